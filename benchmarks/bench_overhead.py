"""Simulator overhead: fedsim running FedAvg versus a bare PyTorch loop doing the same work.

Workload 1 of the performance issue: 10 clients x 5 rounds x 1 local epoch, the small CNN
(``cnn``, channels [16, 32], hidden [64]), synthetic 28x28x1 data with 10 classes, 500
training samples per client (iid split), batch 32, SGD (lr 0.05, momentum 0.9, wd 5e-4),
sample-weighted averaging and an evaluation on 500 test samples after every round.

The bare loop is plain PyTorch in one process: same dataset loader, same split, same model
builder, same initial weights, same per-(round, client) shuffling seeds, same optimizer,
same float64 weighted average, same evaluation. Because it does exactly fedsim's steps, it
reproduces fedsim's per-round accuracy and loss bit for bit; the script checks that and
prints ``same results: yes``, so the ratio compares equal work.

How it is measured: every repetition of every variant runs in a fresh child process (so
neither inherits the other's allocator or caches); the child times its work with
``perf_counter`` after its imports (interpreter and ``import torch`` are excluded from both
sides). Variants alternate within each repetition (A B, then B A, ...) so a noisy neighbour
hits both alike; the figures are medians over repetitions. Each child reports:

* ``wall``: from the first line of work (scenario dict / dataset load) to the last round's
  evaluation and, for fedsim, a published run folder;
* ``steady``: mean host time of rounds 2..R (the first round carries one-off costs: worker
  start, dataset load, first-touch allocations);
* ``CPU``: user + system CPU seconds of the child and of its joined worker processes over
  the same span (less sensitive than wall time to other jobs on the machine; Ray's
  daemons and actors are not children that the child joins, so they are not counted);
* ``peak RSS``: ``ru_maxrss`` of the child; ``tree``: the sampled peak (every 0.5 s) of the
  summed RSS of the child and all its descendants (worker processes, Ray daemons); shared
  library pages are counted once per process, so it over-states a multi-process total.

Thread settings: ``execution.threads: 1`` for fedsim (``torch.set_num_threads(1)`` in the
main process and in every worker), ``torch.set_num_threads(1)`` in the bare loop; both set
``torch.use_deterministic_algorithms(True, warn_only=True)`` as fedsim does.

Target (issue): fedsim / bare <= 1.10 with one worker.

Usage::

    python benchmarks/bench_overhead.py                  # 3 repetitions, full workload
    python benchmarks/bench_overhead.py --reps 1 --rounds 2 --samples 100   # smoke test
    # one child alone (e.g. under a profiler):
    python benchmarks/bench_overhead.py --child fedsim --out /tmp/x
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing the package

SEED = 1
LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4
MODEL_OPTIONS: dict[str, Any] = {"channels": [16, 32], "hidden": [64], "batchnorm": True}
FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")


# --------------------------------------------------------------------------------------------
# the workload
# --------------------------------------------------------------------------------------------
def workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=500, help="training samples per client")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--test", type=int, default=500, help="test samples (evaluated each round)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")


def synthetic_options(a: argparse.Namespace) -> dict[str, Any]:
    return {"train_size": a.clients * a.samples, "test_size": a.test, "num_classes": 10,
            "channels": 1, "image_size": 28}


def scenario_dict(a: argparse.Namespace, *, workers: int = 1, executor: str = "inline",
                  algorithm: str = "fedavg") -> dict[str, Any]:
    return {
        "name": "bench",
        "seed": SEED,
        "rounds": a.rounds,
        "data": {"dataset": "synthetic", "synthetic": synthetic_options(a),
                 "partition": {"kind": "iid"}},
        "model": {"name": "cnn", "options": MODEL_OPTIONS},
        "algorithm": {"name": algorithm, "lr": LR, "momentum": MOMENTUM,
                      "weight_decay": WEIGHT_DECAY, "local_epochs": a.epochs,
                      "batch_size": a.batch},
        "fleet": [{"profile": "raspberry_pi_4", "count": a.clients, "budget_bits": 8}],
        "selection": {"per_round": a.clients},
        "execution": {"executor": executor, "workers": workers, "threads": a.threads},
    }


# --------------------------------------------------------------------------------------------
# memory: sampled peak of the process tree's RSS
# --------------------------------------------------------------------------------------------
class TreeRss:
    """Samples the summed RSS of this process and its descendants in a daemon thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a process that just ended
                total += p.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> TreeRss:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, self._sample())
        self._stop.set()
        self._thread.join()


def _round_clock() -> list[float]:
    """Record the host time at each round's end (patched into fedsim's progress hook)."""
    from fedsim.runner import progress

    stamps: list[float] = []
    original = progress.RoundProgress.update

    def update(self: Any, rec: Any) -> None:
        stamps.append(time.perf_counter())
        original(self, rec)

    progress.RoundProgress.update = update  # type: ignore[method-assign]
    return stamps


# --------------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------------
def child_fedsim(a: argparse.Namespace, t0: float) -> dict[str, Any]:
    """fedsim end to end, in process, exactly as ``fedsim run`` would run the scenario."""
    from fedsim.config.loader import LoadedScenario, validate_scenario_dict
    from fedsim.runner.simulation import run_scenario

    stamps = _round_clock()
    raw = scenario_dict(a, workers=a.workers, executor=a.executor, algorithm=a.algorithm)
    if a.model != "cnn":  # the ResNets of bench_round_cost.py: CIFAR-shaped inputs
        raw["model"] = {"name": a.model, "options": {}}
        raw["data"]["synthetic"].update(channels=3, image_size=32)
    raw["algorithm"].update(json.loads(a.algo_params))
    loaded = LoadedScenario(scenario=validate_scenario_dict(raw, file="<bench>"), path=None,
                            raw=raw)
    out = run_scenario(loaded, output=Path(a.out), run_name=a.name, progress=False)
    return {"rounds": [[r.accuracy, r.loss] for r in out.rounds], "stamps": stamps,
            "path": str(out.path), "summary_host": out.summary["host"]}


def child_bare(a: argparse.Namespace, t0: float) -> dict[str, Any]:
    """The same training in a plain PyTorch loop: no engine, no executor, no records."""
    import torch
    from torch.nn import functional as F

    from fedsim.data import load_dataset, partition
    from fedsim.models import build_model
    from fedsim.seeding import derive_seed, rng

    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    train, test = load_dataset("synthetic", seed=SEED, options=synthetic_options(a))
    parts = partition(train.y, a.clients, kind="iid", rng=rng(SEED, "partition"))
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    tx, ty = torch.from_numpy(test.x), torch.from_numpy(test.y)
    torch.manual_seed(derive_seed(SEED, "init"))
    model = build_model("cnn", in_channels=train.channels, num_classes=train.num_classes,
                        image_size=train.image_size, options=MODEL_OPTIONS)
    global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rounds, stamps = [], []
    for r in range(a.rounds):
        states, weights = [], []
        for c in range(a.clients):
            idx = torch.as_tensor(parts[c], dtype=torch.long)
            xc, yc = x[idx], y[idx]
            model.load_state_dict(global_state)
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
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            weights.append(float(n))
        total = sum(weights)
        new_state = {}
        for k, ref in states[0].items():
            if not torch.is_floating_point(ref):
                new_state[k] = ref.clone()
                continue
            acc = torch.zeros_like(ref, dtype=torch.float64)
            for s, w in zip(states, weights, strict=True):
                acc.add_(s[k].to(torch.float64), alpha=w / total)
            new_state[k] = acc.to(ref.dtype)
        global_state = new_state
        model.load_state_dict(global_state)
        model.eval()
        correct, loss_sum = 0, 0.0
        with torch.no_grad():
            for i in range(0, tx.shape[0], 1024):
                out = model(tx[i : i + 1024])
                loss_sum += float(F.cross_entropy(out, ty[i : i + 1024], reduction="sum"))
                correct += int((out.argmax(1) == ty[i : i + 1024]).sum())
        n_test = int(tx.shape[0])
        rounds.append([correct / n_test, loss_sum / n_test])
        stamps.append(time.perf_counter())
    return {"rounds": rounds, "stamps": stamps}


CHILDREN = {"fedsim": child_fedsim, "bare": child_bare}


def preload() -> None:
    """Imports both sides need, paid before the clock starts (they are not simulator work).

    ``torch.use_deterministic_algorithms`` imports a large part of torch's compiler stack on
    first call (about 2 s here); both children call it, so it is warmed up for both.
    """
    import torch

    import fedsim.data
    import fedsim.models
    import fedsim.seeding  # noqa: F401

    torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (joined) children."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def child_main(a: argparse.Namespace) -> None:
    preload()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    with TreeRss() as mem:
        result = CHILDREN[a.child](a, t0)
    wall = time.perf_counter() - t0
    result["cpu_s"] = cpu_seconds() - cpu0
    stamps = result.pop("stamps")
    per_round = [s - p for p, s in zip([t0, *stamps[:-1]], stamps, strict=True)]
    result.update(
        wall_s=wall,
        round_s=per_round,
        steady_s=statistics.fmean(per_round[1:]) if len(per_round) > 1 else per_round[0],
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        tree_rss_mb=mem.peak / 2**20,
    )
    print("RESULT " + json.dumps(result))


# --------------------------------------------------------------------------------------------
# parent: orchestration and report
# --------------------------------------------------------------------------------------------
def run_child(script: str, variant: str, a: argparse.Namespace, out: Path, name: str,
              extra: tuple[str, ...] | list[str] = (), python: str | None = None,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [python or sys.executable, script, "--child", variant, "--out", str(out),
           "--name", name, "--clients", str(a.clients), "--rounds", str(a.rounds),
           "--epochs", str(a.epochs), "--samples", str(a.samples), "--batch", str(a.batch),
           "--test", str(a.test), "--threads", str(a.threads), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"child {variant} ({name}) failed with status {proc.returncode}")
    return json.loads(lines[-1][len("RESULT "):])


def files_identical(a: str, b: str, files: tuple[str, ...] = FILES) -> bool:
    return all((Path(a) / f).read_bytes() == (Path(b) / f).read_bytes() for f in files)


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "cpu_s": statistics.median(r.get("cpu_s", float("nan")) for r in runs),
        "wall_min_s": min(r["wall_s"] for r in runs),
        "steady_s": statistics.median(r["steady_s"] for r in runs),
        "first_round_s": statistics.median(r["round_s"][0] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "tree_rss_mb": max(r["tree_rss_mb"] for r in runs),
    }


def row(label: str, s: dict[str, float]) -> str:
    return (f"| {label} | {s['wall_s']:.2f} | {s['wall_min_s']:.2f} | {s['cpu_s']:.2f} "
            f"| {s['first_round_s']:.2f} | {s['steady_s']:.3f} | {s['peak_rss_mb']:.0f} "
            f"| {s['tree_rss_mb']:.0f} |")


HEADER = ("| variant | wall s (median) | wall s (min) | CPU s | round 1 s | later rounds s/round "
          "| peak RSS MB | tree RSS MB |\n|---|---|---|---|---|---|---|---|")


def busy_warning() -> str | None:
    """Name other fedsim training processes: timings are only valid on a quiet machine."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    except OSError:
        return None
    mine = {str(os.getpid())}
    busy = [ln.strip() for ln in out.splitlines()
            if "fedsim.cli run" in ln or "fedsim run" in ln]
    busy = [b for b in busy if b.split()[0] not in mine]
    return "; ".join(busy) if busy else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    workload_args(p)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--child", choices=sorted(CHILDREN))
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="run")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--executor", default="inline")
    p.add_argument("--algorithm", default="fedavg")
    p.add_argument("--model", default="cnn")
    p.add_argument("--algo-params", default="{}", help="JSON merged into algorithm:")
    a = p.parse_args()
    if a.child:
        if a.out is None:
            a.out = tempfile.mkdtemp(prefix="fedsim-bench-")
        child_main(a)
        return

    warn = busy_warning()
    if warn:
        print(f"WARNING: other fedsim runs are active, timings are not valid: {warn}")
    print(f"workload: {a.clients} clients x {a.rounds} rounds x {a.epochs} epoch(s), "
          f"{a.samples} samples/client, batch {a.batch}, cnn on synthetic 28x28x1, "
          f"{a.test} test samples, threads {a.threads}, {a.reps} repetition(s)")
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "fedsim": []}
    with tempfile.TemporaryDirectory(prefix="fedsim-bench-") as tmp:
        for rep in range(a.reps):
            order = ["bare", "fedsim"] if rep % 2 == 0 else ["fedsim", "bare"]
            for v in order:
                runs[v].append(run_child(__file__, v, a, Path(tmp), f"{v}{rep}"))
                print(f"  rep {rep} {v:6s} wall {runs[v][-1]['wall_s']:.2f} s", flush=True)
        same = all(r["rounds"] == runs["bare"][0]["rounds"] for r in runs["fedsim"] + runs["bare"])
    s = {k: summarise(v) for k, v in runs.items()}
    print()
    print(HEADER)
    print(row("bare PyTorch loop", s["bare"]))
    print(row("fedsim, 1 worker (inline)", s["fedsim"]))
    ratio = s["fedsim"]["wall_s"] / s["bare"]["wall_s"]
    steady = s["fedsim"]["steady_s"] / s["bare"]["steady_s"]
    cpu = s["fedsim"]["cpu_s"] / s["bare"]["cpu_s"]
    print()
    print(f"same results (per-round accuracy and loss, bit for bit): {'yes' if same else 'NO'}")
    print(f"fedsim/bare wall (median): {ratio:.3f}  (target <= 1.10: "
          f"{'met' if ratio <= 1.10 else 'NOT met'})")
    print(f"fedsim/bare later rounds:  {steady:.3f}")
    print(f"fedsim/bare CPU time:      {cpu:.3f}")
    if warn:
        print("WARNING: the machine was busy; rerun on a quiet machine.")


if __name__ == "__main__":
    main()
