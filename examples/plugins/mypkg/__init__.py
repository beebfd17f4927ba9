"""An example fedsim plug-in package: a model, a dataset and an algorithm (docs/plugins.md).

Use it from a scenario with this folder on PYTHONPATH (or the package installed):

    model: {name: "mypkg.models:build_mlp", options: {hidden: 64}}
    data: {dataset: "mypkg.data:load_blobs"}
    algorithm: {name: "mypkg.algos:FedAvgM", server_momentum: 0.9}
"""
