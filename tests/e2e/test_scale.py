"""Population scale: the vectorised engine against the per-client one, Parquet run folders,
and the refusal of a population too large for the host (docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fedsim
from fedsim.cli import main
from fedsim.errors import InputError
from fedsim.seeding import keyed_normals, keyed_uniforms

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "heterogeneous_40.yaml"
TEXT = ("events.jsonl", "rounds.csv", "clients.csv", "bits.csv")
BASE = ["system_only.enabled=true", "fleet.1.count=60", "rounds=5"]

# Each case switches on what can end a client's round early, alone and together.
CASES = {
    "selection": ["selection.per_round=30"],
    "deadline+over-commit": ["selection.per_round=25", "selection.over_commit=0.4",
                             "selection.deadline_s=4"],
    "failures+batteries+diurnal": [
        "selection.per_round=40", "fleet.1.failure_prob=0.3", "fleet.2.failure_prob=0.5",
        "fleet.1.battery={capacity_wh: 0.003, initial: 0.6}",
        "fleet.0.battery={capacity_wh: 0.002}",
        "availability={model: diurnal, period_s: 40, online_fraction: 0.6}",
        "selection.deadline_s=10"],
    "markov": ["selection.per_round=40",
               "availability={model: markov, mean_on_s: 20, mean_off_s: 10}"],
}


def _run(tmp: Path, name: str, extra: list[str]) -> fedsim.Run:
    return fedsim.run(SCENARIO, overrides=[*BASE, *extra], output=tmp, name=name)


@pytest.mark.parametrize("case", list(CASES))
def test_vectorised_rounds_equal_the_per_client_engine(tmp_path: Path, case: str) -> None:
    fast = _run(tmp_path, "vectorised", CASES[case])
    slow = _run(tmp_path, "per-client", [*CASES[case], "system_only.vectorised=false"])
    for name in TEXT:
        assert (fast.path / name).read_bytes() == (slow.path / name).read_bytes(), name
    statuses = {r["status"] for r in fast.clients}
    if case != "selection":  # the case really exercises early ends
        assert statuses - {"ok"}, statuses


def test_unsupported_settings_fall_back_to_the_per_client_engine(tmp_path: Path) -> None:
    """Utility-based selection needs per-client state: the same run, per client."""
    a = _run(tmp_path, "a", ["selection.per_round=20", "selection.policy=energy"])
    b = _run(tmp_path, "b", ["selection.per_round=20", "selection.policy=energy",
                             "system_only.vectorised=false"])
    assert (a.path / "events.jsonl").read_bytes() == (b.path / "events.jsonl").read_bytes()


def test_parquet_run_exports_to_the_text_run_and_verifies(tmp_path: Path) -> None:
    case = CASES["failures+batteries+diurnal"]
    text = _run(tmp_path, "text", [*case, "execution.events=jsonl"])
    parquet = _run(tmp_path, "parquet", [*case, "execution.events=parquet"])
    assert not (parquet.path / "events.jsonl").exists()
    assert (parquet.path / "events" / "part-000000.parquet").is_file()
    assert parquet.verify().ok
    # the readers see the same records in both layouts (Parquet keeps full precision; the
    # text files round to 1e-10)
    assert np.allclose([r["energy_j"] for r in parquet.clients],
                       [r["energy_j"] for r in text.clients], rtol=0, atol=1e-9)
    assert [r["status"] for r in parquet.clients] == [r["status"] for r in text.clients]
    res = CliRunner().invoke(main, ["export", str(parquet.path)])
    assert res.exit_code == 0, res.output
    out = parquet.path.with_name("parquet-jsonl")
    for name in TEXT:
        assert (out / name).read_bytes() == (text.path / name).read_bytes(), name
    again = CliRunner().invoke(main, ["export", str(text.path)])
    assert again.exit_code == 2 and "already a text run folder" in again.output


def test_parquet_records_of_the_per_client_engine_export_identically(tmp_path: Path) -> None:
    """Single records (FedBuff runs on the per-client engine) go through the same writer."""
    case = ["mode=async", "fedbuff.buffer_k=5", "fedbuff.concurrency=12",
            "fleet.1.failure_prob=0.2"]
    text = _run(tmp_path, "text", [*case, "execution.events=jsonl"])
    parquet = _run(tmp_path, "parquet", [*case, "execution.events=parquet"])
    report = parquet.verify()  # async tasks span versions: read whole, still verified
    assert report.ok, report.render(limit=5)
    assert max(r["staleness"] for r in parquet.clients) > 0
    assert CliRunner().invoke(main, ["export", str(parquet.path)]).exit_code == 0
    for name in TEXT:
        assert (parquet.path.with_name("parquet-jsonl") / name).read_bytes() == \
            (text.path / name).read_bytes(), name


def test_auto_layout_switches_to_parquet_above_the_threshold(tmp_path: Path) -> None:
    from fedsim.config.loader import load_scenario
    from fedsim.runner.simulation import columnar_records

    small = load_scenario(SCENARIO, BASE).scenario
    big = load_scenario(SCENARIO, [*BASE, "fleet.1.count=100000", "selection.per_round=50000",
                                   "rounds=10"]).scenario
    assert not columnar_records(small) and columnar_records(big)


def test_a_population_too_large_for_the_host_is_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    class Tiny:
        available = 2**30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(InputError, match=r"1,000,030 clients .* needs about .* GiB"):
        _run(tmp_path, "huge", ["fleet.1.count=1000000"])
    assert not any(tmp_path.iterdir())


def test_keyed_draws_do_not_depend_on_the_batch() -> None:
    ids = np.arange(1000)
    u = keyed_uniforms(7, ("bandwidth", "up"), ids)
    assert np.array_equal(u[[3, 500]], keyed_uniforms(7, ("bandwidth", "up"), [3, 500]))
    assert not np.array_equal(u, keyed_uniforms(8, ("bandwidth", "up"), ids))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    z = keyed_normals(1, ("x",), np.arange(20000))
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03


def test_verify_reads_a_parquet_run_slice_by_slice_and_catches_a_bad_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fedsim.verify as verify

    case = [*CASES["failures+batteries+diurnal"], "execution.events=parquet"]
    run = _run(tmp_path, "p", case)
    monkeypatch.setattr(verify, "CHUNK", 7)  # many slices per round
    report = verify.verify_run(run.path)
    assert report.ok, report.render(limit=5)
    assert report.client_rounds == len(run.clients)
    part = run.path / "clients" / "part-000002.parquet"
    table = pq.read_table(part)
    energy = table.column("energy_j").to_pylist()
    energy[3] += 1.0
    victim = table.column("client_id")[3].as_py()
    pq.write_table(table.set_column(table.column_names.index("energy_j"), "energy_j",
                                    pa.array(energy)), part)
    bad = verify.verify_run(run.path)
    assert not bad.ok
    assert any(v.round == 2 and v.client == victim and "energy_j" in v.message
               for v in bad.violations), bad.render(limit=5)
