"""What a client task costs besides its training steps, for every built-in method.

    python benchmarks/bench_task_setup.py [--tasks 200] [--methods fedavg,fedmpq]

The cross-device task of scenarios/cross_device.yaml: the small CNN on 28x28x1 inputs,
40 samples per client, batch 20 (2 SGD steps), one torch thread. Each method's worker
context (the one model and algorithm object a worker keeps) runs ``--tasks`` tasks, each
from the same global model with its own seed and shard, exactly as a worker does
(``WorkerContext.run``). Timed per task:

* ``task``: the whole ``WorkerContext.run`` (shard gather, seeding, the method's
  ``client_update``: state loading, optimizer, training, update copy);
* ``steps``: the method's call of ``local_sgd`` (shuffling, batches, forward, loss,
  backward, optimizer steps): the training itself;
* ``setup`` = task - steps: everything fedsim adds around the training on the worker.

FedMPQ-style methods (fedmpq, aqfl, fpq8) re-binarize the global model into bit planes
before training and reduce precision after it: method work, which the table shows as
setup too. Median over tasks after 10 warm-up tasks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from fedsim.algorithms import bitplane, fedavg, quantized_uplink
from fedsim.algorithms.base import ClientTask, TrainHyper
from fedsim.execution.worker import WorkerContext, WorkerSetup

METHODS = ("fedavg", "fedprox", "fedpaq", "uveqfed", "fedmpq", "aqfl", "fpq8")
SYNTH = {"train_size": 4000, "test_size": 100, "image_size": 28, "channels": 1,
         "num_classes": 10}


def setup_for(method: str) -> WorkerSetup:
    return WorkerSetup(
        dataset="synthetic", data_root=None, data_seed=1, data_options=dict(SYNTH),
        model_name="cnn", model_options={}, algorithm=method,
        hyper=TrainHyper(lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=20,
                         local_epochs=1),
        algo_params={}, threads=1,
    )


class StepClock:
    """Wraps ``local_sgd`` where each method module imported it; sums its time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved: list[tuple[Any, Any]] = []

    def __enter__(self) -> StepClock:
        for mod in (fedavg, bitplane, quantized_uplink):
            original = mod.local_sgd

            def timed(*args: Any, _f: Any = original, **kwargs: Any) -> float:
                t0 = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - t0

            self._saved.append((mod, original))
            mod.local_sgd = timed  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        for mod, original in self._saved:
            mod.local_sgd = original  # type: ignore[attr-defined]


def measure(method: str, n: int) -> dict[str, float]:
    ctx = WorkerContext(setup_for(method))
    state = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}
    bits = tuple([8] * ctx.algorithm.spec.n_quantized)
    rng = np.random.default_rng(0)
    tasks = [ClientTask(round=1, client_id=c, bits=bits, seed=1000 + c, lr=0.05,
                        indices=rng.choice(SYNTH["train_size"], 40, replace=False),
                        global_state=state, budget_bits=8.0) for c in range(n + 10)]
    totals, steps = [], []
    with StepClock() as clock:
        for i, task in enumerate(tasks):
            clock.seconds = 0.0
            t0 = time.perf_counter()
            ctx.run(task)
            if i >= 10:
                totals.append(time.perf_counter() - t0)
                steps.append(clock.seconds)
    task_ms = statistics.median(totals) * 1e3
    step_ms = statistics.median(steps) * 1e3
    setup = [(t - s) * 1e3 for t, s in zip(totals, steps, strict=True)]
    return {"task_ms": task_ms, "steps_ms": step_ms, "setup_ms": statistics.median(setup)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--methods", default=",".join(METHODS))
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("| method | task (ms) | training steps (ms) | setup (ms) | setup / task |")
    print("|---|---:|---:|---:|---:|")
    for m in a.methods.split(","):
        r = measure(m, a.tasks)
        print(f"| {m} | {r['task_ms']:.2f} | {r['steps_ms']:.2f} | {r['setup_ms']:.2f} "
              f"| {r['setup_ms'] / r['task_ms']:.1%} |", flush=True)


if __name__ == "__main__":
    main()
