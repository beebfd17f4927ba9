"""CLI through click's runner: exit codes, messages, no tracebacks, no half-written folders."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.cli import main
from tests.conftest import TINY, write_scenario

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def test_help_is_fast_and_does_not_import_torch() -> None:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from fedsim.cli import main\n"
         "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
         "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"],
        capture_output=True, text=True, check=True,
    )
    assert "NOTORCH" in out.stdout and "run" in out.stdout
    assert time.perf_counter() - t0 < 5  # generous on a loaded CI box; typically ~0.3 s


def test_validate_ok_without_torch(tiny_scenario: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from fedsim.cli import main\n"
         f"try:\n    main(['validate', {str(tiny_scenario)!r}])\n"
         "except SystemExit as e: code=e.code\n"
         "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"],
        capture_output=True, text=True,
    )
    assert "ok:" in out.stdout and "NOTORCH" in out.stdout, out.stderr


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(rounds=-2), "key 'rounds'"),
        (lambda d: d.update(colour="red"), "key 'colour': unknown key"),
        (lambda d: d["fleet"][0].update(profile="raspbery_pi_4"), "key 'fleet[0].profile'"),
        (lambda d: d["fleet"][1].update(override={"power.active_w": -1}),
         "fleet[1].override"),
        (lambda d: d["data"].update(dataset="fashion_mnist", root="/nonexistent"),
         "train-images-idx3-ubyte"),
        (lambda d: d["model"].update(name="vgg16"), "key 'model.name'"),
    ],
)
def test_bad_scenarios_exit_2_without_traceback(tmp_path: Path, mutate, needle: str) -> None:
    data = copy.deepcopy(TINY)
    mutate(data)
    path = write_scenario(tmp_path, data)
    for cmd in (["validate", str(path)], ["run", str(path), "-o", str(tmp_path / "out")]):
        code, out = invoke(*cmd)
        assert code == 2, out
        assert needle in out and str(path) in out
        assert "Traceback" not in out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_yaml_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("rounds: [1, 2\n")
    code, out = invoke("validate", str(p))
    assert code == 2 and "invalid YAML at line" in out


def test_missing_file_and_bad_set(tmp_path: Path, tiny_scenario: Path) -> None:
    code, out = invoke("validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "file not found" in out
    code, out = invoke("validate", str(tiny_scenario), "--set", "rounds")
    assert code == 2 and "KEY=VALUE" in out
    code, out = invoke("run", str(tiny_scenario), "--workers", "0")
    assert code == 2 and "--workers" in out


def test_run_writes_complete_folder(tmp_path: Path, tiny_scenario: Path) -> None:
    code, out = invoke("run", str(tiny_scenario), "-o", str(tmp_path / "out"), "--set",
                       "rounds=1")
    assert code == 0, out
    (run,) = [p for p in (tmp_path / "out").iterdir()]
    for f in ("scenario.yaml", "events.jsonl", "rounds.csv", "clients.csv", "bits.csv",
              "summary.json"):
        assert (run / f).is_file(), f
    assert "final accuracy" in out
