"""Resume overhead per round: checkpoint size and time to write it (atomic + fsync).

    python benchmarks/bench_checkpoint.py

Times `fedsim.runner.checkpoint.save_checkpoint` for the global state of quickstart's CNN and of
ResNet-20 (FedMPQ server state included), 20 repetitions each, against one training step of
the same model to put the number in proportion.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from fedsim.models import build_model
from fedsim.runner.checkpoint import save_checkpoint


def main() -> None:
    torch.set_num_threads(1)
    for name, shape, opts in (("cnn", (1, 8, 8), {"channels": [16, 32], "hidden": [64]}),
                              ("resnet20", (3, 32, 32), None)):
        model = build_model(name, in_channels=shape[0], num_classes=10, image_size=shape[1],
                            options=opts)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        payload = {"global_state": state, "server_state": {"b_bar": [8] * 20},
                   "engine": {"next_round": 1, "now": 0.0, "battery": {}},
                   "offsets": {"rounds.csv": 0}, "status_counts": {"ok": 1}}
        with tempfile.TemporaryDirectory() as d:
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                size = save_checkpoint(Path(d), payload)
                times.append(time.perf_counter() - t0)
        print(f"{name:>9}: checkpoint {size / 1024:8.1f} KiB, write+fsync+rename "
              f"{1000 * statistics.median(times):6.1f} ms (median of 20)")


if __name__ == "__main__":
    main()
