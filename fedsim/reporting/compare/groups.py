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

    def __init__(self, path: Path, runs: list[Run]) -> None:
        self.path = path
        self.runs = runs
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
        paths = resolve_group(Path(d))
        key = Path(d).resolve()
        if key in seen:
            raise InputError("given twice", file=d)
        seen.add(key)
        groups.append(Group(Path(d), [load_run(p) for p in paths]))
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
        g.label = _label(g, groups)
    seen: Counter[str] = Counter()
    for g in groups:
        k = seen[g.algorithm]
        seen[g.algorithm] += 1
        g.series = figures.Series(
            g.label, g.runs, style.method_color(g.algorithm),
            linestyle=style.LINESTYLES[k % len(style.LINESTYLES)],
            marker=style.method_marker(g.algorithm),
        )
