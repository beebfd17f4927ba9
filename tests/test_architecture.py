"""The layering and size rules of fedsim/, checked on the source (docs/architecture.md).

Read statically with :mod:`ast` -- every ``import`` statement, at module level or inside a
function -- so a lazy import cannot hide a dependency the rules forbid.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fedsim"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Rule:
    """Modules under ``layer`` (a package path relative to fedsim/) may not import ``banned``."""

    layer: str
    banned: str
    why: str


RULES = (
    Rule("engine", "torch", "the engine schedules; it never sees a tensor"),
    Rule("hardware", "torch", "the cost model is numbers in, numbers out"),
    Rule("hardware", "simpy", "the cost model knows nothing of simulated time"),
    Rule("quant", "simpy", "quantization is training math"),
    Rule("algorithms", "simpy", "methods train and aggregate; the engine schedules"),
    Rule("engine", "fedsim.algorithms", "the engine talks to training through a port only"),
    Rule("records", "torch", "run folders are read on machines without torch"),
    Rule("records", "simpy", "run folders are read without the engine"),
    Rule("verify", "torch", "verify rechecks a run folder from its files alone"),
    Rule("reporting", "torch", "reports are made from copied run folders"),
    Rule("reporting", "fedsim.runner", "reports read run folders, never the simulator"),
)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module name imported by ``path`` (absolute form), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _in_layer(path: Path, layer: str) -> bool:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[: len(layer.split("/"))] == tuple(layer.split("/"))


def _violations(rule: Rule) -> list[str]:
    out = []
    for path in _modules():
        if not _in_layer(path, rule.layer):
            continue
        for line, name in _imports(path):
            if name == rule.banned or name.startswith(rule.banned + "."):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.layer}-not-{r.banned}" for r in RULES])
def test_layer_does_not_import(rule: Rule) -> None:
    assert (PACKAGE / rule.layer).is_dir(), f"fedsim/{rule.layer} is gone: update RULES"
    found = _violations(rule)
    assert not found, f"fedsim/{rule.layer} must not import {rule.banned} ({rule.why}):\n" + \
        "\n".join(found)


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The import scanner sees module-level, function-level and from-imports."""
    src = tmp_path / "m.py"
    src.write_text("import torch.nn\n\ndef f():\n    from fedsim.algorithms import base\n")
    names = [n for _, n in _imports(src)]
    assert "torch.nn" in names and "fedsim.algorithms" in names
    assert "fedsim.algorithms.base" in names


def test_no_file_over_the_limit() -> None:
    big = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in _modules()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    assert not big, f"files over {MAX_FILE_LINES} lines (split them by job):\n" + "\n".join(big)


def test_no_function_over_the_limit() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                f"{node.name}: {n} lines")
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines (break them into named "
                      "steps):\n" + "\n".join(long))


def test_readme_layout_table_matches_the_tree() -> None:
    """Every fedsim/ package is in the README's layout table, and every path it names exists."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = {part.strip("` ") for line in table.splitlines() if line.startswith("| `")
             for part in line.split("|")[1].split(",")}
    for path in named:
        assert (PACKAGE.parent / path.rstrip("/")).exists(), f"README names {path}: not found"
    packages = {f"fedsim/{p.name}/" for p in PACKAGE.iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    missing = sorted(packages - named)
    assert not missing, f"packages missing from the README's layout table: {missing}"
