"""fedsim versus Flower's simulation (``flwr`` on Ray) on workload 1, timed in one script.

Workload 1 of ``bench_overhead.py`` (10 clients x 5 rounds x 1 epoch, small CNN, synthetic
28x28x1, 500 samples per client, batch 32, SGD lr 0.05 / momentum 0.9 / wd 5e-4, centralised
evaluation on 500 test samples after each round) in both frameworks:

* fedsim: ``bench_overhead.py --child fedsim`` with 1 worker (inline) and with 2 workers
  (process pool);
* Flower: a ``ServerApp`` running the message-API ``FedAvg`` strategy (all 10 nodes train
  each round, no federated evaluation, centralised evaluation through ``evaluate_fn``) and a
  ``ClientApp`` doing exactly the bare loop's steps (same data, split, model builder,
  initial weights and per-(round, client) shuffling seeds), run by
  ``flwr.simulation.run_simulation`` on its Ray backend with 1 CPU per client and 1 or 2
  CPUs in total (so 1 or 2 Ray actors). Each actor loads the dataset once (a module-level
  cache), as fedsim's workers do.

Each variant runs in a fresh child process; wall time excludes the interpreter start and
``import torch`` for both, and includes Ray's start for Flower (it is part of every Flower
simulation) and the process pool's start for fedsim. Torch threads: 1 per process.

Flower and fedsim's Ray extra want different Ray releases (flwr 1.42 pins ray 2.55.1), so
Flower lives in its own virtual environment that also sees fedsim's (a ``.pth`` file)::

    python3.11 -m venv /work/flwr-venv
    /work/flwr-venv/bin/pip install "flwr[simulation]"
    echo "import site; site.addsitedir('$PWD/.venv/lib/python3.11/site-packages')" \\
        > /work/flwr-venv/lib/python3.11/site-packages/zz_fedsim.pth
    python benchmarks/bench_flower.py --flwr-python /work/flwr-venv/bin/python

Without a usable ``--flwr-python`` the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_overhead import (  # noqa: E402
    HEADER,
    LR,
    MODEL_OPTIONS,
    MOMENTUM,
    SEED,
    WEIGHT_DECAY,
    TreeRss,
    busy_warning,
    cpu_seconds,
    preload,
    row,
    run_child,
    summarise,
    synthetic_options,
    workload_args,
)

WORKLOAD_ENV = "FEDSIM_BENCH_WORKLOAD"

# --------------------------------------------------------------------------------------------
# Flower apps (imported by name inside Ray actors: this module, not __main__)
# --------------------------------------------------------------------------------------------
_CACHE: dict[str, Any] = {}


def _workload() -> argparse.Namespace:
    return argparse.Namespace(**json.loads(os.environ[WORKLOAD_ENV]))


def _data() -> dict[str, Any]:
    """Dataset, split and a model, built once per process (Ray actor or driver)."""
    if not _CACHE:
        import torch

        from fedsim.data import load_dataset, partition
        from fedsim.models import build_model
        from fedsim.seeding import rng

        a = _workload()
        torch.set_num_threads(a.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        train, test = load_dataset("synthetic", seed=SEED, options=synthetic_options(a))
        parts = partition(train.y, a.clients, kind="iid", rng=rng(SEED, "partition"))
        x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
        model = build_model("cnn", in_channels=train.channels, num_classes=train.num_classes,
                            image_size=train.image_size, options=MODEL_OPTIONS)
        _CACHE.update(a=a, x=x, y=y, parts=parts, model=model,
                      tx=torch.from_numpy(test.x), ty=torch.from_numpy(test.y))
    return _CACHE


def _client_app() -> Any:
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        import torch
        from torch.nn import functional as F

        from fedsim.seeding import derive_seed

        d = _data()
        a, model = d["a"], d["model"]
        c = int(context.node_config["partition-id"])
        r = int(msg.content["config"]["server-round"]) - 1
        idx = torch.as_tensor(d["parts"][c], dtype=torch.long)
        xc, yc = d["x"][idx], d["y"][idx]
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                              weight_decay=WEIGHT_DECAY)
        gen = torch.Generator().manual_seed(derive_seed(SEED, "train", r, c))
        n = xc.shape[0]
        steps, bs = max(1, n // a.batch), min(a.batch, n)
        model.train()
        for _ in range(a.epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(steps):
                b = order[s * bs : (s + 1) * bs]
                loss = F.cross_entropy(model(xc[b]), yc[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                              "metrics": MetricRecord({"num-examples": n})})
        return Message(content=content, reply_to=msg)

    return app


_STAMPS: list[float] = []
_ROUNDS: list[list[float]] = []


def _server_app() -> Any:
    from flwr.app import ArrayRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        import torch
        from torch.nn import functional as F

        from fedsim.seeding import derive_seed

        d = _data()
        a, model = d["a"], d["model"]
        torch.manual_seed(derive_seed(SEED, "init"))
        from fedsim.models import build_model

        init = build_model("cnn", in_channels=1, num_classes=10, image_size=28,
                           options=MODEL_OPTIONS)

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_round == 0:
                return None
            model.load_state_dict(arrays.to_torch_state_dict())
            model.eval()
            correct, loss_sum, n = 0, 0.0, int(d["tx"].shape[0])
            with torch.no_grad():
                for i in range(0, n, 1024):
                    out = model(d["tx"][i : i + 1024])
                    yb = d["ty"][i : i + 1024]
                    loss_sum += float(F.cross_entropy(out, yb, reduction="sum"))
                    correct += int((out.argmax(1) == yb).sum())
            _ROUNDS.append([correct / n, loss_sum / n])
            _STAMPS.append(time.perf_counter())
            return MetricRecord({"accuracy": correct / n})

        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0,
                          min_train_nodes=a.clients, min_available_nodes=a.clients)
        strategy.start(grid=grid, initial_arrays=ArrayRecord(init.state_dict()),
                       num_rounds=a.rounds, evaluate_fn=evaluate)

    return app


def child_flower(a: argparse.Namespace) -> None:
    import logging

    from flwr.simulation import run_simulation

    os.environ[WORKLOAD_ENV] = json.dumps(
        {k: getattr(a, k) for k in ("clients", "rounds", "epochs", "samples", "batch", "test",
                                    "threads")})
    # Ray actors import this module by name from the benchmarks folder.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    preload()
    logging.getLogger("flwr").setLevel(logging.WARNING)
    import bench_flower  # this file as a module, so Ray pickles the apps by reference

    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    with TreeRss() as mem:
        run_simulation(
            server_app=bench_flower._server_app(),
            client_app=bench_flower._client_app(),
            num_supernodes=a.clients,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"num_cpus": a.actors, "include_dashboard": False},
            },
        )
    wall = time.perf_counter() - t0
    stamps = bench_flower._STAMPS
    per_round = [s - p for p, s in zip([t0, *stamps[:-1]], stamps, strict=True)]
    import resource

    print("RESULT " + json.dumps({
        "rounds": bench_flower._ROUNDS, "wall_s": wall, "round_s": per_round,
        "cpu_s": cpu_seconds() - cpu0,
        "steady_s": statistics.fmean(per_round[1:]) if len(per_round) > 1 else per_round[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tree_rss_mb": mem.peak / 2**20,
    }))


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------
def flwr_version(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import flwr, ray; print(flwr.__version__, "
                              "ray.__version__)"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    workload_args(p)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--flwr-python", default="/work/flwr-venv/bin/python",
                   help="a Python that can import flwr[simulation] and fedsim")
    p.add_argument("--child", choices=["flower"])
    p.add_argument("--actors", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="run")
    a = p.parse_args()
    if a.child:
        child_flower(a)
        return

    versions = flwr_version(a.flwr_python)
    if versions is None:
        print(f"Flower is not usable from {a.flwr_python} (pip install 'flwr[simulation]' "
              "failed or was not done); nothing to compare.")
        return
    warn = busy_warning()
    if warn:
        print(f"WARNING: other fedsim runs are active, timings are not valid: {warn}")
    print(f"flwr, ray: {versions}; workload: {a.clients} clients x {a.rounds} rounds x "
          f"{a.epochs} epoch(s), {a.samples} samples/client, batch {a.batch}, "
          f"threads {a.threads}, {a.reps} repetition(s)")
    overhead = str(HERE / "bench_overhead.py")
    me = str(HERE / "bench_flower.py")
    variants = {
        "fedsim, 1 worker (inline)": lambda out, n: run_child(overhead, "fedsim", a, out, n),
        "Flower sim, 1 Ray actor": lambda out, n: run_child(
            me, "flower", a, out, n, ["--actors", "1"], python=a.flwr_python),
        "fedsim, 2 workers (process pool)": lambda out, n: run_child(
            overhead, "fedsim", a, out, n, ["--workers", "2", "--executor", "process"]),
        "Flower sim, 2 Ray actors": lambda out, n: run_child(
            me, "flower", a, out, n, ["--actors", "2"], python=a.flwr_python),
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="fedsim-bench-") as tmp:
        for rep in range(a.reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for i, v in enumerate(order):
                runs[v].append(variants[v](Path(tmp), f"r{rep}v{i}"))
                print(f"  rep {rep} {v:34s} wall {runs[v][-1]['wall_s']:.2f} s", flush=True)
    s = {k: summarise(v) for k, v in runs.items()}
    print()
    print(HEADER)
    for k in variants:
        print(row(k, s[k]))
    print()
    for k, v in runs.items():  # same work: the same curve (Flower averages in float32 numpy)
        print(f"test accuracy / loss per round, {k}: "
              + ", ".join(f"{x[0]:.3f}/{x[1]:.4g}" for x in v[0]["rounds"]))
    for n, (f, fl) in {1: ("fedsim, 1 worker (inline)", "Flower sim, 1 Ray actor"),
                       2: ("fedsim, 2 workers (process pool)", "Flower sim, 2 Ray actors")}.items():
        print(f"Flower/fedsim with {n} worker(s): wall {s[fl]['wall_s'] / s[f]['wall_s']:.2f}, "
              f"later rounds {s[fl]['steady_s'] / s[f]['steady_s']:.2f}")
    if warn:
        print("WARNING: the machine was busy; rerun on a quiet machine.")


if __name__ == "__main__":
    main()
