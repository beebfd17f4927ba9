"""`fedsim profiles ...`: browse, inspect and validate hardware profiles.

Kept out of cli.py so that file stays a thin list of commands; torch loads only for
``show`` (it builds the scenario's model to cost one local epoch) and ``calibrate`` (it times
training steps on this machine).
"""

from __future__ import annotations

from pathlib import Path

import click

from fedsim.cli.errors import handle_errors
from fedsim.errors import InputError


def _library(extra: tuple[Path, ...]):  # type: ignore[no-untyped-def]
    from fedsim.hardware import ProfileLibrary

    return ProfileLibrary.load([str(p) for p in extra], base_dir=Path.cwd())


@click.group("profiles")
def profiles() -> None:
    """Hardware profiles: list, show, validate, calibrate."""


_extra = click.option("--profiles", "extra", multiple=True, type=click.Path(path_type=Path),
                      help="Extra profile files or folders (as a scenario's `profiles:`).")


@profiles.command("list")
@_extra
@handle_errors
def list_cmd(extra: tuple[Path, ...]) -> None:
    """Table of every known device profile (name, class, mode, peak, power, RAM, link)."""
    lib = _library(extra)
    rows = [("name", "class", "mode", "peak G ops/s", "active W", "idle W", "RAM MiB", "link")]
    for name in lib.names():
        p = lib.get(name)
        link = p.link if isinstance(p.link, str) else p.link.name
        rows.append((name, p.device_class, p.compute.mode, _g(p.compute.peak_gflops),
                     _g(p.power.active_w), _g(p.power.idle_w), _g(p.memory.ram_mb),
                     link))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
    click.echo(f"\nlinks: {', '.join(lib.links())}")


@profiles.command("show")
@click.argument("name")
@click.option("--scenario", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cost one local epoch of this scenario's model (default: quickstart's CNN).")
@_extra
@handle_errors
def show(name: str, scenario: Path | None, extra: tuple[Path, ...]) -> None:
    """All fields and sources of profile NAME, and the cost of one local epoch at 2/4/8 bits."""
    from fedsim.hardware import check_memory, describe, train_cost, train_memory_bytes

    lib = _library(extra)
    prof = lib.get(name, key="NAME")
    click.echo(f"{name}  ({lib.source_of(name)})")
    for field, value in describe(prof):  # fields, then each source once (sources[i])
        click.echo(f"  {field:<34} {value}")

    spec, samples, batch, label = _epoch_workload(scenario)
    steps = max(1, samples // batch)
    click.echo(f"\n  one local epoch of {label} ({samples} samples, batch {batch}, {steps} steps):")
    click.echo(f"    {'bits':>5} {'time':>12} {'energy':>12} {'train memory':>14}  fits?")
    for b in (2, 4, 8, 32):
        bits = [b] * spec.n_quantized
        act = None if b == 32 else 4
        c = train_cost(prof, spec, bits, act_bits=act, batch_size=batch, steps=steps)
        mem = train_memory_bytes(spec, bits, batch_size=batch, act_bits=act)
        problem = check_memory(prof, spec, bits, batch_size=batch, act_bits=act)
        label_b = "float" if b == 32 else f"{b}"
        click.echo(f"    {label_b:>5} {c.time_s:>10.4g} s {c.energy_j:>10.4g} J "
                   f"{mem / 2**20:>10.2f} MiB  {'yes' if problem is None else 'no: ' + problem}")


def _epoch_workload(scenario: Path | None):  # type: ignore[no-untyped-def]
    import torch  # noqa: F401

    from fedsim.config.loader import load_scenario
    from fedsim.data import dataset_info
    from fedsim.models import build_model, model_spec

    # the repository's quickstart (fedsim/cli/profiles.py -> <repo>/scenarios/quickstart.yaml)
    path = scenario or Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
    if not path.exists():
        raise InputError("scenario not found (give --scenario FILE)", file=path)
    sc = load_scenario(path).scenario
    opts = sc.data.synthetic.model_dump() if sc.data.dataset == "synthetic" else {}
    c, size, classes = dataset_info(sc.data.dataset, opts)
    model = build_model(sc.model.name, in_channels=c, num_classes=classes, image_size=size,
                        options=sc.model.resolved_options())
    spec = model_spec(model, name=sc.model.name, input_shape=(c, size, size))
    samples = 600  # a typical client shard; the time scales linearly with it
    return spec, samples, sc.algorithm.batch_size, f"{sc.model.name} from {path.name}"


@profiles.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@handle_errors
def validate_cmd(files: tuple[Path, ...]) -> None:
    """Validate profile FILES (device or link YAML); exit 2 naming the first bad key."""
    from fedsim.hardware import load_any_file

    for f in files:
        paths = sorted(f.rglob("*.y*ml")) if f.is_dir() else [f]
        for p in paths:
            prof = load_any_file(p)
            click.echo(f"ok: {p}: {type(prof).__name__.replace('Profile', '').lower()} "
                       f"'{prof.name}'")


@profiles.command("calibrate")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Profile YAML to write (replaced if it exists).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads while timing; the profile describes training with this many.")
@click.option("--quick", is_flag=True,
              help="A few seconds: the CNN only, fewer and shorter repetitions (noisier).")
@click.option("--model", "models", multiple=True,
              type=click.Choice(["cnn", "mobilenet_v2", "resnet20"]),
              help="Models to time (all fit the efficiencies; the first also the fake-quant "
                   "table; default: cnn mobilenet_v2 resnet20; cnn mobilenet_v2 with --quick).")
@click.option("--name", default=None,
              help="The profile's name (default: the output file's name).")
@handle_errors
def calibrate_cmd(output: Path, threads: int, quick: bool, models: tuple[str, ...],
                  name: str | None) -> None:
    """Time training on this machine and write a `table` profile of it to --output.

    Float (SGD) and fake-quant (bit planes, BitPlaneSGD, group Lasso) steps of the CNN at
    2/4/8/32 weight bits x 4/32 activation bits give the effective float rate and the table of
    relative latencies; RAM and memory bandwidth are measured, power is an estimate.
    """
    import re

    from fedsim.calibration.host import A_GRID, W_GRID, run_calibration

    if name is None:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", output.stem).lstrip("_.-") or "my_host"
    chosen = models or (("cnn", "mobilenet_v2") if quick else ("cnn", "mobilenet_v2", "resnet20"))
    budget, reps, mem = (4.0, 3, 32 * 2**20) if quick else (15.0, 5, 64 * 2**20)
    res = run_calibration(output, models=chosen, threads=threads, seconds_budget=budget,
                          reps=reps, name=name, mem_bytes=mem,
                          log=lambda m: click.echo(m, err=True))
    click.echo(f"host: {res.cpu}, {res.threads} thread(s), RAM {res.ram_mb} MiB, "
               f"memory bandwidth {res.mem_bandwidth_gb_s:g} GB/s (copy)")
    eff = res.profile.compute.efficiency
    click.echo(f"float rate (512 x 512 matrix product): {res.peak_gflops:g} G ops/s; fitted "
               "efficiency: " + ", ".join(f"{c} {eff.of(c):.3g}" for c in
                                         ("dense_conv", "depthwise_conv", "linear",
                                          "elementwise")))
    click.echo("step times (median):")
    for t in res.timings:
        kind = "float" if (t.w_bits, t.a_bits) == (32, 32) else "fake-quant"
        click.echo(f"  {t.workload.model:<9} W{t.w_bits:<2} A{t.a_bits:<2} "
                   f"{t.step_s * 1e3:8.2f} ms  ({kind})")
    click.echo("relative latency vs float (rows: w_bits, columns: a_bits):")
    click.echo("  " + " " * 6 + "".join(f"{'A' + str(a):>8}" for a in A_GRID))
    for w, row in zip(W_GRID, res.table, strict=True):
        click.echo(f"  {'W' + str(w):<6}" + "".join(f"{v:>8.3g}" for v in row))
    for c in res.checks:
        click.echo(f"cross-check {c.workload.label} W{c.w_bits}A{c.a_bits}: measured "
                   f"{c.measured_s * 1e3:.3g} ms/step, profile predicts "
                   f"{c.predicted_s * 1e3:.3g} ms ({c.error:+.0%})")
    for wl, measured, predicted in res.held_out:
        click.echo(f"held out {wl.label} float: measured {measured * 1e3:.3g} ms/step, "
                   f"predicted from the other models' fit {predicted * 1e3:.3g} ms "
                   f"({predicted / measured - 1:+.0%})")
    click.echo(f"wrote {output} (profile '{name}', validated) in {res.seconds:.1f} s; "
               f"use it with `profiles: [{output}]` in a scenario")


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


@profiles.command("check")
@click.argument("table", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", "devices", multiple=True,
              help="Only rows of this device (repeatable; default: every device in the table).")
@click.option("--fit", "fit_device", default=None, metavar="DEVICE",
              help="Fit DEVICE's per-class efficiencies on its `fit` rows, report every row "
                   "with the fitted profile and write it to --output.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --fit: the profile YAML to write.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every prediction as CSV.")
@click.option("--strict", is_flag=True,
              help="Exit 1 when a holdout row misses +-30 % or a device's ranking breaks.")
@_extra
@handle_errors
def check_cmd(table: Path | None, devices: tuple[str, ...], fit_device: str | None,
              output: Path | None, csv_out: Path | None, strict: bool,
              extra: tuple[Path, ...]) -> None:
    """Predict published on-device training times (TABLE, default: the shipped one).

    Per row: measured and predicted seconds per batch, the error and where the predicted time
    goes; per device: whether the cost model orders the models as the measurements do.
    """
    from fedsim.calibration.report import run_check

    if fit_device is not None and output is None:
        raise InputError("--fit needs --output FILE (the fitted profile to write)",
                         key="--output")
    if output is not None and fit_device is None:
        raise InputError("--output only applies with --fit DEVICE", key="--output")
    ok = run_check(_library(extra), table, devices=devices, fit_device=fit_device,
                   output=output, csv_out=csv_out, echo=click.echo)
    if strict and not ok:
        raise SystemExit(1)
