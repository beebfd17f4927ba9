"""`fedsim profiles check`: the shipped measurement table against the cost model, bad tables
exiting 2 with file, row and column, and `--fit` writing a valid profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fedsim.calibration.check import (
    TOLERANCE,
    SpecCache,
    fit_efficiency,
    predict_rows,
    rankings,
)
from fedsim.calibration.measurements import default_table, load_measurements
from fedsim.calibration.report import load_table
from fedsim.cli import main
from fedsim.errors import InputError
from fedsim.hardware import ProfileLibrary, load_profile_file

HEADER = ("id,device,model,options,input,batch,precision,seconds_per_batch,power_w,use,"
          "source,url,note")
GOOD_ROW = ("r1,raspberry_pi_4,torchvision.resnet18,,3x64x64,4,fp32,0.5,,fit,test,,")


@pytest.fixture(scope="module")
def lib() -> ProfileLibrary:
    return ProfileLibrary.load()


@pytest.fixture(scope="module")
def shipped(lib: ProfileLibrary):  # type: ignore[no-untyped-def]
    _path, rows = load_table(lib, None)
    cache = SpecCache()
    profiles = {d: lib.get(d) for d in {m.device for m in rows}}
    return rows, cache, profiles, predict_rows(profiles, rows, cache)


def test_shipped_table_cites_every_row_and_has_holdouts(shipped) -> None:  # type: ignore[no-untyped-def]
    rows, *_ = shipped
    assert default_table() is not None
    assert all(m.source and m.url for m in rows)
    devices = {m.device for m in rows}
    assert {"raspberry_pi_4", "raspberry_pi_5", "jetson_nano", "snapdragon_855_phone"} <= devices
    for d in devices:  # every device has rows to fit on and rows held out
        assert {m.use for m in rows if m.device == d} == {"fit", "holdout"}


def test_holdout_rows_within_30_percent_and_rankings_hold(shipped) -> None:  # type: ignore[no-untyped-def]
    _rows, _cache, _profiles, preds = shipped
    misses = {p.row.id: f"{p.error:+.1%}" for p in preds
              if p.row.use == "holdout" and abs(p.error) > TOLERANCE}
    assert not misses, misses
    broken = [(r.device, r.setting, r.discordant) for r in rankings(preds) if not r.preserved]
    assert not broken, broken


def test_operator_mix_orders_mobilenet_after_resnet18_on_the_pi(shipped) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: MobileNetV2 has ~3x fewer MACs than ResNet-18 but trains slower on a
    Raspberry Pi CPU; the per-class law must say so, a MAC count would not."""
    _rows, cache, _profiles, preds = shipped
    by = {p.row.id: p for p in preds}
    for dev in ("rpi4", "rpi5"):
        r18, mv2 = by[f"{dev}-resnet18"], by[f"{dev}-mobilenetv2"]
        assert cache.get(mv2.row).macs_per_sample * 3 < cache.get(r18.row).macs_per_sample
        assert mv2.row.seconds > r18.row.seconds
        assert mv2.predicted_s > r18.predicted_s


def test_fit_is_reproducible_and_matches_the_shipped_profile(lib, shipped) -> None:  # type: ignore[no-untyped-def]
    rows, cache, profiles, _ = shipped
    fit_rows = [m for m in rows if m.device == "raspberry_pi_5" and m.use == "fit"]
    a = fit_efficiency(profiles["raspberry_pi_5"], fit_rows, cache)
    b = fit_efficiency(a.profile, fit_rows, cache)  # starting elsewhere: the same answer
    for c in ("dense_conv", "depthwise_conv", "linear", "elementwise"):
        got = a.profile.compute.efficiency.of(c)
        assert b.profile.compute.efficiency.of(c) == pytest.approx(got, rel=1e-6)
        # the shipped file holds these numbers (rounded to 3 significant digits)
        assert lib.get("raspberry_pi_5").compute.efficiency.of(c) == pytest.approx(got, rel=6e-3)


def test_cli_check_runs_and_fit_writes_a_valid_profile(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["profiles", "check", "--strict"])
    assert res.exit_code == 0, res.output
    assert "holdout rows: 5/5 within +-30%" in res.output
    assert "ranking (3x224x224, batch 16, fp32): preserved" in res.output
    out = tmp_path / "pi5.yaml"
    csv_out = tmp_path / "pred.csv"
    res = CliRunner().invoke(main, ["profiles", "check", "--device", "raspberry_pi_5",
                                    "--fit", "raspberry_pi_5", "-o", str(out),
                                    "--csv", str(csv_out)])
    assert res.exit_code == 0, res.output
    prof = load_profile_file(out)
    assert prof.name == "raspberry_pi_5"
    assert any("fedsim profiles check --fit raspberry_pi_5" in s.cite for s in prof.sources)
    assert csv_out.read_text().startswith("id,device,model")


def _table(tmp_path: Path, *lines: str) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    ("lines", "key", "needle"),
    [
        ((HEADER.replace(",seconds_per_batch", ""), GOOD_ROW), "line 1", "seconds_per_batch"),
        ((HEADER, GOOD_ROW.replace(",0.5,", ",-0.5,")), "line 2, column seconds_per_batch",
         "positive"),
        ((HEADER, GOOD_ROW.replace("raspberry_pi_4", "raspbery_pi_4")), "line 2, column device",
         "did you mean 'raspberry_pi_4'"),
        ((HEADER, GOOD_ROW.replace("torchvision.resnet18", "torchvision.resnet19")),
         "line 2, column model", "unknown torchvision"),
        ((HEADER, GOOD_ROW.replace("resnet18", "cnnx")), "line 2, column model", "unknown"),
        ((HEADER, GOOD_ROW.replace(",,3x64x64", ",widthmult=2,3x64x64")),
         "line 2, column options", "does not accept"),
        ((HEADER, GOOD_ROW.replace("3x64x64", "3x64")), "line 2, column input", "CxHxW"),
        ((HEADER, GOOD_ROW.replace(",fit,", ",train,")), "line 2, column use", "fit or holdout"),
        ((HEADER, GOOD_ROW.replace(",fp32,", ",fp8,")), "line 2, column precision", "fp32"),
        ((HEADER, GOOD_ROW, GOOD_ROW), "line 3, column id", "duplicate"),
        ((HEADER, GOOD_ROW.replace(",4,", ",0,", 1)), "line 2, column batch", "positive"),
    ],
)
def test_bad_table_exits_2_naming_file_row_and_column(tmp_path: Path, lib: ProfileLibrary,
                                                     lines: tuple[str, ...], key: str,
                                                     needle: str) -> None:
    path = _table(tmp_path, *lines)
    from fedsim.models import validate_model_options

    with pytest.raises(InputError) as info:
        load_measurements(path, devices=lib.names(), check_model=validate_model_options)
    assert info.value.file == str(path) and info.value.key == key
    assert needle in info.value.detail
    res = CliRunner().invoke(main, ["profiles", "check", str(path)])
    assert res.exit_code == 2 and str(path) in res.output and key in res.output
    assert "Traceback" not in res.output


def test_cli_fit_needs_output_and_known_device(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["profiles", "check", "--fit", "raspberry_pi_5"])
    assert res.exit_code == 2 and "--output" in res.output
    res = CliRunner().invoke(main, ["profiles", "check", "--fit", "stm32h7a3", "-o",
                                    str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "no rows for device 'stm32h7a3'" in res.output
