"""Cross-device rounds: fedsim against a plain sequential PyTorch loop over the same tasks.

    python benchmarks/bench_cross_device.py [--rounds 3] [--batch 1,50] [--workers 2]

The workload is scenarios/cross_device.yaml (1,000 clients, all selected, 2 SGD steps of 20
samples each, synthetic 28x28, the small CNN). The baseline, measured in the same process,
is the loop a researcher would write: for every client of every round, load the global
model, train its steps with SGD + momentum, keep the state; then average and evaluate. It
uses the same data, model, batches and thread count, but no engine, no records, no
checkpoints. fedsim runs in-process (`fedsim.run`) with each `execution.batch_clients`
value and, unbatched, with each `--workers` count; the table gives host seconds of the
first round (with the run's start-up: data, model, workers) and per round after it, and
the ratio of the plain loop's later rounds to each run's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import fedsim
from fedsim.config.loader import load_scenario
from fedsim.data import load_dataset, partition
from fedsim.models import build_model
from fedsim.seeding import derive_seed, rng

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "cross_device.yaml"


def plain_loop(rounds: int, overrides: list[str]) -> list[float]:
    """Seconds per round of the plain loop (one client at a time, then a mean, then a test)."""
    sc = load_scenario(SCENARIO, overrides).scenario
    torch.set_num_threads(sc.execution.threads)
    opts = sc.data.synthetic.model_dump()
    train, test = load_dataset("synthetic", root=None, seed=sc.seed, options=opts)
    parts = partition(train.y, sc.n_clients, kind="iid", rng=rng(sc.seed, "partition"))
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    torch.manual_seed(derive_seed(sc.seed, "init"))
    model = build_model(sc.model.name, in_channels=train.channels,
                        num_classes=train.num_classes, image_size=train.image_size,
                        options=sc.model.resolved_options())
    glob = {k: v.clone() for k, v in model.state_dict().items()}
    a = sc.algorithm
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        states = []
        for cid, idx in enumerate(parts):
            model.load_state_dict(glob)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                                  weight_decay=a.weight_decay)
            gen = torch.Generator().manual_seed(derive_seed(sc.seed, "train", r, cid))
            xi, yi = x[idx], y[idx]
            order = torch.randperm(len(idx), generator=gen)
            for s in range(len(idx) // a.batch_size):
                b = order[s * a.batch_size:(s + 1) * a.batch_size]
                loss = F.cross_entropy(model(xi[b]), yi[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        glob = {k: (torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype))
                for k, v in glob.items()}
        model.load_state_dict(glob)
        model.eval()
        with torch.no_grad():
            model(torch.from_numpy(test.x)).argmax(1)
        times.append(time.perf_counter() - t0)
    return times


def fedsim_rounds(batch: int, rounds: int, workers: int = 1,
                  overrides: tuple[str, ...] = ()) -> list[float]:
    """Host seconds per round of a fedsim run (from its rounds' progress timestamps)."""
    stamps: list[float] = []
    import fedsim.runner.simulation as sim

    original = sim.RunRecorder.on_round

    def on_round(self, rec):  # type: ignore[no-untyped-def]
        original(self, rec)
        stamps.append(time.perf_counter())

    sim.RunRecorder.on_round = on_round
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            fedsim.run(SCENARIO, overrides=[*overrides, f"rounds={rounds}",
                                            f"execution.workers={workers}",
                                            f"execution.batch_clients={batch}"], output=d)
    finally:
        sim.RunRecorder.on_round = original
    return list(np.diff([t0, *stamps]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", default="1,50")
    ap.add_argument("--workers", default="2", help="worker counts to run unbatched ('' none)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="scenario override for every run, e.g. data.synthetic.image_size=8")
    args = ap.parse_args()
    plain = plain_loop(args.rounds, args.set)
    rows = [("plain sequential loop", plain)]
    sets = tuple(args.set)
    for k in [int(v) for v in args.batch.split(",")]:
        rows.append((f"fedsim, batch_clients={k}", fedsim_rounds(k, args.rounds, 1, sets)))
    for w in [int(v) for v in args.workers.split(",") if v]:
        rows.append((f"fedsim, --workers {w}", fedsim_rounds(1, args.rounds, w, sets)))
    base = float(np.mean(plain[1:])) if len(plain) > 1 else plain[0]
    print("\n| run | first round (s) | later rounds (s, mean) | plain loop / run |")
    print("|---|---:|---:|---:|")
    for name, t in rows:
        later = float(np.mean(t[1:])) if len(t) > 1 else t[0]
        print(f"| {name} | {t[0]:.2f} | {later:.2f} | {base / later:.2f} |")
    print(json.dumps({name: t for name, t in rows}))


if __name__ == "__main__":
    main()
