"""`fedsim profiles ...`: browse, inspect and validate hardware profiles.

Kept out of cli.py so that file stays a thin list of commands; torch loads only for
``show`` (it builds the scenario's model to cost one local epoch).
"""

from __future__ import annotations

from pathlib import Path

import click

from fedsim.cli_errors import handle_errors
from fedsim.errors import InputError


def _library(extra: tuple[Path, ...]):  # type: ignore[no-untyped-def]
    from fedsim.hardware import ProfileLibrary

    return ProfileLibrary.load([str(p) for p in extra], base_dir=Path.cwd())


@click.group("profiles")
def profiles() -> None:
    """Hardware profiles: list, show, validate."""


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
    for field, value in describe(prof):
        click.echo(f"  {field:<34} {value}")
    click.echo("  sources:")
    for s in prof.sources:
        est = " [estimate]" if s.estimate else ""
        click.echo(f"    - {', '.join(s.fields)}: {s.cite}{est}")

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

    path = scenario or Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.yaml"
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


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"
