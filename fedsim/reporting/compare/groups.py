"""The entries of a comparison: a run, or a seeds parent's runs, with a label and a look."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fedsim.errors import InputError
from fedsim.reporting import figures, style
from fedsim.reporting.describe import fleet_text
from fedsim.reporting.run import Run, load_run, resolve_group


class Group:
    """One compared entry: a run, or a seeds parent's runs (drawn as mean and band)."""

    def __init__(self, path: Path, runs: list[Run], given_label: str = "") -> None:
        self.path = path
        self.runs = runs
        self.given_label = given_label  # a sweep cell's "c00: key=value, ..."
        self.label = ""
        self.series: figures.Series | None = None

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def algorithm(self) -> str:
        return self.first.algorithm


def load_groups(run_dirs: Sequence[str | Path]) -> list[Group]:
    """One group per argument; a folder given twice is an error (it would be drawn twice
    under two labels, which reads as two results)."""
    if not run_dirs:
        raise InputError("give at least one run folder to compare")
    groups = []
    seen: set[Path] = set()
    for d in run_dirs:
        key = Path(d).resolve()
        if key in seen:
            raise InputError("given twice", file=d)
        seen.add(key)
        if (Path(d) / "sweep.json").is_file():
            groups += sweep_groups(Path(d))
            continue
        paths = resolve_group(Path(d))
        groups.append(Group(Path(d), [load_run(p) for p in paths]))
    return groups


def sweep_groups(folder: Path) -> list[Group]:
    """A ``fedsim sweep`` folder: one group per grid cell (its seeds' runs)."""
    from fedsim.records.reader import read_mapping

    plan = read_mapping(folder / "sweep.json", "the sweep's plan").get("plan") or {}
    cells = plan.get("cells") if isinstance(plan, dict) else None
    seeds = plan.get("seeds") if isinstance(plan, dict) else None
    if not isinstance(cells, list) or not isinstance(seeds, list):
        raise InputError("not a fedsim sweep plan (expected plan.cells and plan.seeds)",
                         file=folder / "sweep.json")
    groups = []
    for c in cells:
        runs = [folder / f"{c['cell']}-s{s}" for s in seeds]
        missing = [r.name for r in runs if not r.is_dir()]
        if missing:
            raise InputError(f"the sweep is not finished: missing {', '.join(missing[:4])}; "
                             "run the same `fedsim sweep` command again", file=folder)
        values = " · ".join(str(o).split("=", 1)[-1] for o in c.get("overrides", []))
        groups.append(Group(folder / c["cell"], [load_run(r) for r in runs],
                            f"{c['cell']}: {values}"))  # short: legends and bar labels
    return groups


def _label(g: Group, groups: list[Group]) -> str:
    """The method's name, made unique by scenario, fleet or run id when methods repeat:
    the first of these that tells the entries of that method apart."""
    base = style.method_name(g.algorithm)
    same = [o for o in groups if o.algorithm == g.algorithm]
    if len(same) == 1:
        return base
    if len({o.first.scenario_name for o in same}) == len(same):
        return f"{base} · {g.first.scenario_name}"
    if len({fleet_text(o.first) for o in same}) == len(same):
        return f"{base} · {fleet_text(g.first)}"
    return f"{base} · {g.first.run_id if len(g.runs) == 1 else g.path.name}"


def label_groups(groups: list[Group]) -> None:
    """Set each group's label and series: the method's colour and marker for every entry
    of a method, a different line style for each repeat of it."""
    for g in groups:
        g.label = g.given_label or _label(g, groups)
    seen: Counter[str] = Counter()
    for g in groups:
        k = seen[g.algorithm]
        seen[g.algorithm] += 1
        g.series = figures.Series(
            g.label, g.runs, style.method_color(g.algorithm),
            linestyle=style.LINESTYLES[k % len(style.LINESTYLES)],
            marker=style.method_marker(g.algorithm),
        )
