"""Cost of one FedMPQ training step against plain float training of the same model.

What is measured: one training step of ResNet-20 (fedsim's zoo, option-A shortcuts) on a
batch of 32x32x3 inputs, on this machine's CPU, in two variants built in the same run:

* ``float``: the float model, cross-entropy, ``torch.optim.SGD`` (momentum 0.9, wd 5e-4);
* ``quant``: the same model converted with ``to_quantized`` at 8 bits in every layer and
  4-bit activations, cross-entropy + bit-level group Lasso (lambda 1e-3), ``BitPlaneSGD``
  (lr 0.25, power-of-two plane steps, re-quantization after every step).

Time: both variants live in one process and are timed in alternating blocks (so a noisy
neighbour hits both alike); the reported figure is the median per-step time over blocks.
Peak memory: each variant runs in a fresh child process; the figure is the peak resident set
(``ru_maxrss``) minus the resident set just before the model is built, i.e. model, optimizer
state, activations, gradients and workspaces of the step. Children run with a fixed malloc
mmap threshold so freed buffers go back to the OS and the peak tracks live memory.

Targets (issue): quant/float <= 1.5x in time and <= 2x in peak memory.

Usage::

    python benchmarks/bench_quant_step.py                 # defaults: batch 128, 8 bits
    python benchmarks/bench_quant_step.py --threads 1 --blocks 7 --steps 3
    python benchmarks/bench_quant_step.py --threads 1 --rule reference   # the code's step
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedsim.models import build_model, quantizable_layers
from fedsim.quant import BitPlaneSGD, group_lasso, to_quantized

FLOAT_LR = 0.1  # float SGD learning rate
FLOAT_WD = 5e-4  # float SGD weight decay (the FedAvg baseline's)
PLANE_LR = 0.25  # FedMPQ plane learning rate (paper time)
LAMBDA = 1e-3  # group Lasso weight (reference configs)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def build(variant: str, bits: int, act_bits: int,
          rule: str = "paper") -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model("resnet20", in_channels=3, num_classes=10, image_size=32)
    if variant == "float":
        opt = torch.optim.SGD(model.parameters(), lr=FLOAT_LR, momentum=0.9, weight_decay=FLOAT_WD)
        return model.train(), opt
    n = len(quantizable_layers(model))
    qmodel = to_quantized(model, [bits] * n, act_bits=act_bits)
    del model
    return qmodel.train(), BitPlaneSGD(qmodel, lr=PLANE_LR, momentum=0.9, rule=rule,
                                       generator=torch.Generator().manual_seed(0))


def train_step(variant: str, model: nn.Module, opt: torch.optim.Optimizer, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    if variant == "quant":
        loss = loss + group_lasso(model, LAMBDA)
    opt.zero_grad()
    loss.backward()
    opt.step()


def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(size, 3, 32, 32, generator=g), torch.randint(0, 10, (size,), generator=g)


def child_memory(args: argparse.Namespace) -> None:
    """Child process: peak memory of ``args.variant`` (printed as JSON)."""
    torch.set_num_threads(args.threads)
    x, y = batch(args.batch)
    base = _rss_bytes()
    model, opt = build(args.variant, args.bits, args.act_bits, args.rule)
    for _ in range(3):  # the first step allocates optimizer state and grads
        train_step(args.variant, model, opt, x, y)
    print(json.dumps({"variant": args.variant, "peak_bytes": _peak_rss_bytes() - base}))


def measure_memory(args: argparse.Namespace, variant: str) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--batch",
        str(args.batch),
        "--bits",
        str(args.bits),
        "--act-bits",
        str(args.act_bits),
        "--threads",
        str(args.threads),
        "--rule",
        args.rule,
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_bytes"])


def measure_time(args: argparse.Namespace) -> dict[str, list[float]]:
    x, y = batch(args.batch)
    built = {v: build(v, args.bits, args.act_bits, args.rule) for v in ("float", "quant")}
    for v, (model, opt) in built.items():  # warm-up: allocator, optimizer state, kernels
        for _ in range(2):
            train_step(v, model, opt, x, y)
    times: dict[str, list[float]] = {"float": [], "quant": []}
    for block in range(args.blocks):
        order = ("float", "quant") if block % 2 == 0 else ("quant", "float")
        for v in order:
            model, opt = built[v]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                train_step(v, model, opt, x, y)
            times[v].append((time.perf_counter() - t0) / args.steps)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--act-bits", type=int, default=4)
    p.add_argument("--blocks", type=int, default=5, help="alternating timing blocks")
    p.add_argument("--steps", type=int, default=3, help="steps per timing block")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--rule", choices=["paper", "reference"], default="paper",
                   help="the plane step: paper-time, or the authors' code's (update_rule)")
    p.add_argument("--child", choices=["float", "quant"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.variant = args.child
        child_memory(args)
        return
    torch.set_num_threads(args.threads)
    mem = {v: measure_memory(args, v) for v in ("float", "quant")}
    times = measure_time(args)
    med = {v: statistics.median(t) for v, t in times.items()}
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
        f"{args.bits}-bit weights, {args.act_bits}-bit activations, {args.rule} plane rule"
    )
    for v in ("float", "quant"):
        print(
            f"{v:>5}: step {med[v] * 1e3:8.1f} ms (blocks: "
            f"{', '.join(f'{t * 1e3:.0f}' for t in times[v])})  "
            f"peak {mem[v] / 2**20:7.1f} MiB"
        )
    print(
        f"ratio: time {med['quant'] / med['float']:.2f}x (target <= 1.5x), "
        f"peak memory {mem['quant'] / mem['float']:.2f}x (target <= 2x)"
    )


if __name__ == "__main__":
    main()
