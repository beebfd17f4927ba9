"""`fedsim profiles list / show` through click's runner."""

from __future__ import annotations

from click.testing import CliRunner

from fedsim.cli import main
from fedsim.hardware import ProfileLibrary


def test_list_names_every_shipped_profile() -> None:
    res = CliRunner().invoke(main, ["profiles", "list"])
    assert res.exit_code == 0, res.output
    for name in ProfileLibrary.load().names():
        assert name in res.output


def test_show_prints_each_source_once_and_the_epoch_cost() -> None:
    res = CliRunner().invoke(main, ["profiles", "show", "raspberry_pi_4"])
    assert res.exit_code == 0, res.output
    prof = ProfileLibrary.load().get("raspberry_pi_4")
    for src in prof.sources:
        assert res.output.count(src.cite) == 1, src.cite
    assert "one local epoch of cnn from quickstart.yaml" in res.output
    assert "float" in res.output and "fits?" in res.output


def test_show_unknown_profile_exits_2_with_a_suggestion() -> None:
    res = CliRunner().invoke(main, ["profiles", "show", "raspberry_pi_44"])
    assert res.exit_code == 2
    assert "raspberry_pi_4" in res.output and "Traceback" not in res.output
