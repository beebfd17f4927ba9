"""Host calibration: the written `table` profile predicts this host's own local-epoch time.

The prediction check trains the CNN for real (one thread, a few seconds in all) and compares
with ``train_cost`` on the freshly calibrated profile; calibration and truth are measured
back to back, after warm-ups, as medians, and a noisy machine gets one more try. Both time
with the clock calibration uses for one thread (the training thread's CPU time, equal to wall
time on an idle machine), so other processes taking the core away do not skew either side.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fedsim.algorithms.training import local_sgd, steps_per_epoch
from fedsim.calibration.host import W_GRID, calibrate, step_clock
from fedsim.cli import main
from fedsim.errors import InputError
from fedsim.hardware import ProfileLibrary, load_profile_file, train_cost
from fedsim.hardware.schema import LatencyTable, estimated_fields, uncited_fields
from fedsim.models import build_model, model_spec
from fedsim.quant import BitPlaneSGD, group_lasso, to_quantized

THREADS = 1
SAMPLES, BATCH = 256, 32  # one local epoch: 8 steps of the CNN on 1x28x28
SETTINGS = ((32, None), (4, 4))  # float, and W4A4 fake-quant (FedMPQ's client)
# The float CNN's 8-step epoch (~80-100 ms) swings between two speeds ~20 % apart on this
# 2-core machine: six back-to-back runs (this session and the previous one's code) gave
# errors from -9 % to +24 % with the model unchanged. 20 % made CI flaky; 35 % still fails
# a law that misses an operator class (those errors are 2-5x).
TOLERANCE = 0.35


def _quick_calibration(path: Path):  # type: ignore[no-untyped-def]
    return calibrate(path, models=("cnn", "mobilenet_v2"), threads=THREADS, seconds_budget=5.0,
                     reps=3, mem_bytes=16 * 2**20, name="test_host")


def _epoch_seconds(w_bits: int, act_bits: int | None, x, y, spec,  # type: ignore[no-untyped-def]
                   model_name: str = "cnn", batch: int = 32) -> tuple[float, float]:
    """Median of 3 timed local epochs (after one warm-up epoch), as FedAvg / FedMPQ train:
    (seconds on calibration's clock, wall seconds)."""
    torch.manual_seed(1)
    model = build_model(model_name, in_channels=x.shape[1], num_classes=10,
                        image_size=x.shape[-1])
    if w_bits == 32 and act_bits is None:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        reg = None
    else:
        model = to_quantized(model, [w_bits] * spec.n_quantized, act_bits=act_bits)
        opt = BitPlaneSGD(model, lr=0.25, momentum=0.9)
        qmodel = model

        def reg() -> torch.Tensor:
            return group_lasso(qmodel, 1e-3)

    gen = torch.Generator().manual_seed(2)

    clock = step_clock(THREADS)

    def one() -> tuple[float, float]:
        t0, w0 = clock(), time.perf_counter()
        local_sgd(model, x, y, optimizer=opt, batch_size=batch, epochs=1, generator=gen,
                  regulariser=reg)
        return clock() - t0, time.perf_counter() - w0

    one()  # warm-up
    runs = [one() for _ in range(3)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _relative_errors(profile, spec) -> dict[str, tuple[float, float, float, float]]:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(7)  # other data than the calibration's
    x = torch.randn(SAMPLES, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (SAMPLES,), generator=gen)
    steps = steps_per_epoch(SAMPLES, BATCH)
    out = {}
    for w, a in SETTINGS:
        truth, wall = _epoch_seconds(w, a, x, y, spec)
        pred = train_cost(profile, spec, [w] * spec.n_quantized, act_bits=a, batch_size=BATCH,
                          steps=steps).time_s
        out[f"cnn W{w}A{a or 32}"] = (pred, truth, wall, pred / truth - 1.0)
    # MobileNetV2 (depthwise-separable: the per-class law's other half), float
    mv2 = build_model("torchvision.mobilenet_v2", in_channels=3, num_classes=10, image_size=32)
    mspec = model_spec(mv2, name="mobilenet_v2", input_shape=(3, 32, 32))
    xm = torch.randn(64, 3, 32, 32, generator=gen)
    ym = torch.randint(0, 10, (64,), generator=gen)
    truth, wall = _epoch_seconds(32, None, xm, ym, mspec, "torchvision.mobilenet_v2", 16)
    pred = train_cost(profile, mspec, [32] * mspec.n_quantized, act_bits=None, batch_size=16,
                      steps=steps_per_epoch(64, 16)).time_s
    out["mobilenet_v2 W32A32"] = (pred, truth, wall, pred / truth - 1.0)
    return out


def test_calibrated_profile_predicts_own_epoch_within_tolerance(tmp_path: Path) -> None:
    path = tmp_path / "host.yaml"
    spec = model_spec(build_model("cnn", in_channels=1, num_classes=10, image_size=28),
                      name="cnn", input_shape=(1, 28, 28))
    old = torch.get_num_threads()
    try:
        prof = _quick_calibration(path)
        assert torch.get_num_threads() == old  # calibrate restores the thread count
        torch.set_num_threads(THREADS)
        errors = _relative_errors(prof, spec)
        if any(abs(e) > TOLERANCE for *_, e in errors.values()):
            # A very noisy machine: calibrate and measure once more, back to back.
            prof = _quick_calibration(path)
            torch.set_num_threads(THREADS)
            errors = _relative_errors(prof, spec)
    finally:
        torch.set_num_threads(old)
    report = {k: f"predicted {p:.4f} s, measured {t:.4f} s ({e:+.1%}; wall {w:.4f} s)"
              for k, (p, t, w, e) in errors.items()}
    print(report)
    assert all(abs(e) <= TOLERANCE for *_, e in errors.values()), report

    # The file is the profile, loads back, is fully cited and honest about its estimates.
    assert load_profile_file(path) == prof
    assert path.read_text().startswith("# Written by fedsim")
    c = prof.compute
    assert c.mode == "table" and c.latency_table is not None
    # the per-class law: depthwise convolutions run far below the dense ones on a CPU
    assert c.efficiency.depthwise_conv < c.efficiency.dense_conv
    t = c.latency_table
    assert not t.monotone and t.w_bits == W_GRID and t.a_bits[-1] == 32
    assert t.relative_latency[-1][-1] == 1.0  # float is the base rate
    # Fake quantization is extra float work: quantized weights never beat float on a CPU.
    assert all(v > 1.0 for row in t.relative_latency[:-1] for v in row)
    assert prof.link == "ethernet" and prof.memory.ram_mb > 0
    assert uncited_fields(prof) == []
    est = estimated_fields(prof)
    assert {"power.active_w", "power.idle_w", "memory.usable_fraction"} <= set(est)
    assert not {"compute.peak_gflops", "compute.latency_table",
                "compute.mem_bandwidth_gb_s", "memory.ram_mb"} & set(est)
    assert any("fedsim profiles calibrate on" in s.cite and "1 thread(s)" in s.cite
               and "torch" in s.cite for s in prof.sources)


def test_cli_calibrate_writes_a_valid_profile(tmp_path: Path) -> None:
    out = tmp_path / "my host.yaml"
    res = CliRunner().invoke(main, ["profiles", "calibrate", "--output", str(out), "--quick"])
    assert res.exit_code == 0, res.output
    assert out.is_file()
    assert "relative latency" in res.output and "G ops/s" in res.output
    assert f"wrote {out}" in res.output
    assert load_profile_file(out).name == "my_host"  # from the file name, made a valid name
    res = CliRunner().invoke(main, ["profiles", "validate", str(out)])
    assert res.exit_code == 0 and "ok:" in res.output, res.output


def test_cli_calibrate_bad_input_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder" / "x.yaml"
    res = CliRunner().invoke(main, ["profiles", "calibrate", "--output", str(missing),
                                    "--quick"])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(main, ["profiles", "calibrate", "-o", str(tmp_path / "x.yaml"),
                                    "--name", "bad name"])
    assert res.exit_code == 2 and "name" in res.output
    with pytest.raises(InputError, match="cannot calibrate"):
        calibrate(tmp_path / "x.yaml", models=("vgg",))
    assert not (tmp_path / "x.yaml").exists()


def test_monotone_flag_relaxes_only_the_order_rule() -> None:
    grid = {"w_bits": (4, 32), "a_bits": (4, 32),
            "relative_latency": ((1.4, 1.6), (1.1, 1.0))}
    with pytest.raises(ValueError, match="decrease"):
        LatencyTable(**grid)
    assert not LatencyTable(**grid, monotone=False).monotone
    with pytest.raises(ValueError, match="end at 32"):  # the other rules still hold
        LatencyTable(w_bits=(4, 8), a_bits=(32,), relative_latency=((1.0,), (1.0,)),
                     monotone=False)


def test_no_shipped_profile_relaxes_monotonicity() -> None:
    lib = ProfileLibrary.load()
    for name in lib.names():
        t = lib.get(name).compute.latency_table
        assert t is None or t.monotone, name
