"""The Python entry points: ``fedsim.runner`` and ``fedsim.load_run`` (docs/api.md).

A notebook or a script gets the same runs as the command line -- same validation at the
door (an :class:`~fedsim.errors.InputError` names the key), same run folder, byte for byte
-- and reads a finished run as typed rows, numpy columns or pandas DataFrames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.records.schema import CSV_SCHEMAS, CsvSchema

#: "rounds", "clients", "bits", "plan": the run folder's CSV files by stem
_TABLES: dict[str, CsvSchema] = {s.file.removesuffix(".csv"): s for s in CSV_SCHEMAS.values()}


def run(scenario: str | Path | Mapping[str, Any], *, overrides: Sequence[str] = (),
        output: str | Path = "results", name: str | None = None,
        progress: bool = False) -> Run:
    """Run a scenario (a YAML path, or a mapping of scenario keys) and return its run.

    ``overrides`` are ``--set`` strings (``"rounds=3"``); the run folder is published under
    ``output`` exactly as ``fedsim run`` would write it.
    """
    from fedsim.runner.simulation import run_scenario

    outcome = run_scenario(_load(scenario, overrides), output=Path(output), run_name=name,
                           progress=progress, overrides=list(overrides))
    return Run(outcome.path)


def _load(scenario: str | Path | Mapping[str, Any], overrides: Sequence[str]) -> Any:
    from fedsim.config.loader import (
        LoadedScenario,
        apply_overrides,
        load_scenario,
        validate_scenario,
    )

    if isinstance(scenario, Mapping):
        raw = apply_overrides(dict(scenario), overrides)
        sc, notes = validate_scenario(raw, file="<scenario>")
        return LoadedScenario(scenario=sc, path=None, raw=raw, notes=notes)
    return load_scenario(scenario, overrides)


def load_run(path: str | Path) -> Run:
    """A finished run folder (checked: an InputError says what is missing)."""
    from fedsim.records.reader import check_run_folder

    check_run_folder(Path(path))
    return Run(Path(path))


@dataclass(frozen=True)
class Run:
    """One finished run folder, read on demand (nothing is loaded until asked for)."""

    path: Path

    @property
    def summary(self) -> dict[str, Any]:
        from fedsim.records.reader import read_mapping

        return read_mapping(self.path / "summary.json", "the run's summary")

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario (every default filled in)."""
        from fedsim.records.reader import read_mapping

        return read_mapping(self.path / "scenario.yaml", "the run's scenario")

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Typed rows of ``rounds``, ``clients``, ``bits`` or ``plan`` (ints, floats, str)."""
        from fedsim.records.reader import read_rows

        return [r.values for r in read_rows(self.path / self._file(table), _TABLES[table])]

    def columns(self, table: str) -> dict[str, Any]:
        """The table as numpy columns (numbers as float arrays, text as object arrays)."""
        from fedsim.records.reader import read_table

        return dict(read_table(self.path / self._file(table), _TABLES[table]).columns)

    def dataframe(self, table: str) -> Any:
        """The table as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Run.dataframe needs pandas (pip install pandas); "
                              "Run.columns gives the same data as numpy arrays") from None
        cols = self.columns(table)
        return pd.DataFrame({c: cols[c] for c in _TABLES[table].names if c in cols})

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return self.rows("rounds")

    @property
    def clients(self) -> list[dict[str, Any]]:
        return self.rows("clients")

    def events(self, rounds: set[int] | None = None) -> Iterator[dict[str, Any]]:
        """The event log in simulated-time order (only ``rounds`` when given)."""
        from fedsim.records.reader import iter_events

        for _, ev in iter_events(self.path / "events.jsonl", rounds):
            yield ev

    def report(self, output: str | Path | None = None) -> Path:
        """Write report.html / report.md (default: ``<run>/report/``); its path."""
        from fedsim.reporting import write_report

        return write_report(self.path, None if output is None else Path(output))

    def verify(self) -> Any:
        """Recheck the run's invariants from its files (``fedsim verify``)."""
        from fedsim.verify import verify_run

        return verify_run(self.path)

    def _file(self, table: str) -> str:
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(_TABLES)}")
        return _TABLES[table].file
