"""``fedsim profiles check``: the measurement table against the cost model, as text and CSV.

Kept apart from :mod:`fedsim.calibration.check` (the numbers) so the numbers can be tested
without parsing text, and from the CLI so the command stays a list of options.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from fedsim.calibration.check import (
    RANK_TIE,
    TOLERANCE,
    FitResult,
    Prediction,
    RankCheck,
    SpecCache,
    fit_efficiency,
    predict_rows,
    rankings,
    significant,
)
from fedsim.calibration.measurements import Measurement, default_table, load_measurements
from fedsim.errors import InputError
from fedsim.hardware.loader import ProfileLibrary, load_profile_file, read_yaml
from fedsim.hardware.schema import OP_CLASSES

Echo = Callable[[str], None]


def load_table(lib: ProfileLibrary, table: Path | None) -> tuple[Path, list[Measurement]]:
    """The table at ``table`` (default: the shipped one), validated against ``lib``."""
    from fedsim.models import validate_model_options

    path = table or default_table()
    if path is None:
        raise InputError("no measurement table shipped with this install; give TABLE",
                         key="TABLE")
    if not path.exists():
        raise InputError("measurement table not found", file=path)
    rows = load_measurements(path, devices=lib.names(), check_model=validate_model_options)
    return path, rows


def run_check(
    lib: ProfileLibrary,
    table: Path | None,
    *,
    devices: Sequence[str] = (),
    fit_device: str | None = None,
    output: Path | None = None,
    csv_out: Path | None = None,
    echo: Echo = print,
) -> bool:
    """Print the check; True when every holdout row is within +-30 % and rankings hold."""
    path, rows = load_table(lib, table)
    for d in devices:
        if d not in {m.device for m in rows}:
            raise InputError(f"no rows for device {d!r} in {path.name}", key="--device")
    if fit_device is not None and fit_device not in {m.device for m in rows}:
        raise InputError(f"no rows for device {fit_device!r} in {path.name}", key="--fit")
    if devices:
        rows = [m for m in rows if m.device in devices]
    profiles = {d: lib.get(d) for d in sorted({m.device for m in rows})}
    cache = SpecCache()
    fit: FitResult | None = None
    if fit_device is not None:
        fit_rows = [m for m in rows if m.device == fit_device and m.use == "fit"]
        if not fit_rows:
            raise InputError(f"{fit_device} has no rows marked use=fit in {path.name}",
                             key="--fit")
        fit = fit_efficiency(profiles[fit_device], fit_rows, cache)
        profiles[fit_device] = fit.profile
    preds = predict_rows(profiles, rows, cache)
    echo(f"measurement table: {path} ({len(rows)} rows, {len(profiles)} devices)")
    ok = True
    for device in profiles:
        dev_preds = [p for p in preds if p.row.device == device]
        ok &= _device_section(device, dev_preds, profiles, echo,
                              fit if fit and fit.profile.name == device else None)
    if fit is not None and output is not None:
        write_fitted_profile(lib, fit, output)
        echo(f"\nwrote {output} (profile '{fit.profile.name}', efficiencies fitted on "
             f"{len(fit.rows)} rows, validated)")
    if csv_out is not None:
        write_csv(preds, csv_out)
        echo(f"wrote {csv_out}")
    return ok


def _device_section(device: str, preds: Sequence[Prediction], profiles: dict[str, Any],
                    echo: Echo, fit: FitResult | None) -> bool:
    prof = profiles[device]
    eff = prof.compute.efficiency
    echo(f"\n{device}: peak {prof.compute.peak_gflops:g} G ops/s, bandwidth "
         f"{prof.compute.mem_bandwidth_gb_s:g} GB/s, efficiency "
         + ", ".join(f"{c} {eff.of(c):.3g}" for c in OP_CLASSES)
         + (f", overhead {prof.compute.op_overhead_us:.3g} us/call"
            if prof.compute.op_overhead_us else ""))
    if fit is not None:
        echo(f"  fitted now on {len(fit.rows)} fit rows (rms log error "
             f"{fit.rms_log_error:.3f}); before: "
             + ", ".join(f"{c} {fit.before.of(c):.3g}" for c in OP_CLASSES))
    head = ("id", "use", "model", "batch", "measured s", "predicted s", "error", "most time in")
    table = [head]
    for p in preds:
        m = p.row
        share = p.breakdown[p.dominant] / max(p.predicted_s, 1e-300)
        flag = "" if p.within or m.use == "fit" else "  MISS"
        table.append((m.id, m.use, m.workload, str(m.batch), f"{m.seconds:.4g}",
                      f"{p.predicted_s:.4g}", f"{p.error:+.1%}{flag}",
                      f"{p.dominant} {share:.0%}"))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            echo("  " + "  ".join("-" * w for w in widths))
    hold = [p for p in preds if p.row.use == "holdout"]
    fitr = [p for p in preds if p.row.use == "fit"]
    ok = all(p.within for p in hold)
    if fitr:
        echo(f"  fit rows: max |error| {max(abs(p.error) for p in fitr):.1%}")
    if hold:
        inside = sum(p.within for p in hold)
        echo(f"  holdout rows: {inside}/{len(hold)} within +-{TOLERANCE:.0%}, max |error| "
             f"{max(abs(p.error) for p in hold):.1%}")
    for rk in rankings(preds):
        ok &= rk.preserved
        echo("  " + _rank_line(rk))
    return ok


def _rank_line(rk: RankCheck) -> str:
    order = " < ".join(_short(w) for w in rk.measured)
    if rk.preserved:
        return (f"ranking ({rk.setting}): preserved ({order}; pairs within "
                f"{RANK_TIE:.0%} count as ties)")
    pairs = ", ".join(f"{_short(a)} vs {_short(b)}" for a, b in rk.discordant)
    return f"ranking ({rk.setting}): BROKEN for {pairs} (measured: {order})"


def _short(model: str) -> str:
    return model.removeprefix("torchvision.")


def write_csv(preds: Sequence[Prediction], path: Path) -> None:
    cols = ["id", "device", "model", "options", "input", "batch", "precision", "use",
            "measured_s", "predicted_s", "error", *(f"pred_{k}_s" for k in preds[0].breakdown)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for p in preds:
            m = p.row
            w.writerow([m.id, m.device, m.model,
                        ";".join(f"{k}={v}" for k, v in sorted(m.options.items())),
                        "x".join(map(str, m.input_shape)), m.batch, m.precision, m.use,
                        f"{m.seconds:.6g}", f"{p.predicted_s:.6g}", f"{p.error:.4f}",
                        *(f"{v:.6g}" for v in p.breakdown.values())])


def write_fitted_profile(lib: ProfileLibrary, fit: FitResult, output: Path) -> None:
    """The device's YAML with the fitted efficiencies and a source saying where they came from.

    The file is written anew (YAML comments of the original are not kept) and loaded back.
    """
    name = fit.profile.name
    data = read_yaml(lib.source_of(name))
    comp = fit.profile.compute
    data["compute"]["efficiency"] = {c: significant(comp.efficiency.of(c)) for c in OP_CLASSES}
    if fit.overhead_fitted:
        data["compute"]["op_overhead_us"] = round(comp.op_overhead_us, 3)
    ids = ", ".join(m.id for m in fit.rows)
    fields = ["compute.efficiency"] + (["compute.op_overhead_us"] if fit.overhead_fitted else [])
    sources = [s for s in data.get("sources", []) if not set(s.get("fields", [])) <= set(fields)]
    for s in sources:
        s["fields"] = [f for f in s.get("fields", []) if f not in fields]
    sources.append({"fields": fields,
                    "cite": f"fitted by `fedsim profiles check --fit {name}` on rows {ids} "
                            f"(rms log error {fit.rms_log_error:.3f})"})
    data["sources"] = [s for s in sources if s["fields"]]
    output.write_text(yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")
    load_profile_file(output)
