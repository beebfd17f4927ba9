"""Federated methods: FedAvg, FedMPQ and baselines behind one small protocol.

This package's ``__init__`` stays torch-free; import ``fedsim.algorithms.base`` for the
protocol and :func:`fedsim.algorithms.registry.algorithm_class` for a method by name.
"""
