"""Shipped profiles validate and cite sources; bad files and overrides give InputErrors that
name the file and the key; the library resolves names, links and user directories."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from fedsim.errors import InputError
from fedsim.hardware import (
    PRECISION_MODES,
    DeviceProfile,
    LinkProfile,
    ProfileLibrary,
    apply_override,
    builtin_profiles_dir,
    describe,
    estimated_fields,
    load_link_file,
    load_profile_file,
    uncited_fields,
)
from fedsim.hardware.schema import DEFAULT_EFFICIENCY

SECTION_6 = [
    "raspberry_pi_4",
    "raspberry_pi_5",
    "jetson_nano",
    "jetson_orin_nano",
    "snapdragon_8_gen_2_phone",
    "midrange_phone",
    "macbook_air_m2",
    "intel_n100_minipc",
    "stm32h7a3",
    "stm32l4r5",
]

# ---------------------------------------------------------------------- shipped profiles


def test_builtin_dir_is_the_repo_folder():
    d = builtin_profiles_dir()
    assert d is not None and d.name == "hardware_profiles"


def test_every_shipped_profile_validates_and_cites_sources(lib):
    assert len(lib.names()) >= 10
    assert set(SECTION_6) <= set(lib.names())
    for name in lib.names():
        p = lib.get(name)
        assert isinstance(p.link, LinkProfile), name
        assert p.sources, name
        assert uncited_fields(p) == [], (name, uncited_fields(p))
        assert all(s.cite.strip() for s in p.sources)
        assert lib.source_of(name).suffix == ".yaml"
        assert any(k == "compute.law" for k, _ in describe(p))
    for name in lib.links():
        link = lib.link(name)
        assert link.sources and uncited_fields(link) == [], name


def test_shipped_profiles_cover_modes_classes_and_links(lib):
    modes = {lib.get(n).compute.mode for n in lib.names()}
    assert modes == set(PRECISION_MODES)
    classes = {lib.get(n).device_class for n in lib.names()}
    assert {"mcu", "sbc", "jetson", "phone", "laptop"} <= classes
    assert {"wifi", "lte", "5g", "ble", "ethernet"} <= set(lib.links())
    assert any(lib.get(n).power.model == "bottom_up" for n in lib.names())
    # estimates are marked, and at least one figure per device is one
    assert all(estimated_fields(lib.get(n)) for n in lib.names())


def test_every_shipped_file_loads_on_its_own():
    root = builtin_profiles_dir()
    assert root is not None
    for f in sorted(root.glob("*.yaml")):
        assert isinstance(load_profile_file(f), DeviceProfile)
    for f in sorted((root / "links").glob("*.yaml")):
        assert isinstance(load_link_file(f), LinkProfile)


def test_hardware_package_imports_neither_torch_nor_simpy():
    code = (
        "import sys, fedsim.hardware; "
        "bad = [m for m in ('torch', 'simpy') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ------------------------------------------------------------------------- bad files

GOOD = """\
name: my_board
class: sbc
compute:
  mode: float
  peak_gflops: 10.0
  efficiency:
    dense_conv: 0.2
  mem_bandwidth_gb_s: 4.0
power:
  active_w: 5.0
  idle_w: 1.0
memory:
  ram_mb: 2048
  usable_fraction: 0.7
link: wifi
sources:
  - fields: [compute, power, memory]
    cite: my bench
    estimate: true
"""


def write(tmp_path: Path, text: str, name: str = "dev.yaml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


def error_for(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_profile_file(path)
    assert info.value.file == str(path)
    return info.value


def test_good_file_loads(tmp_path):
    p = load_profile_file(write(tmp_path, GOOD))
    assert p.name == "my_board" and p.link == "wifi" and p.device_class == "sbc"


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("peak_gflops", "peak_glops")))
    assert err.key == "compute.peak_glops"
    assert "unknown key" in err.detail and "did you mean 'peak_gflops'" in err.detail
    assert str(err).startswith(str(tmp_path / "dev.yaml"))


def test_wrong_type_is_named(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("ram_mb: 2048", "ram_mb: lots")))
    assert err.key == "memory.ram_mb" and "number" in err.detail and "'lots'" in err.detail
    # a quoted number is a string, not a number
    err = error_for(write(tmp_path, GOOD.replace("ram_mb: 2048", 'ram_mb: "2048"')))
    assert err.key == "memory.ram_mb"


def test_negative_value_is_named(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("active_w: 5.0", "active_w: -5.0")))
    assert err.key == "power.active_w" and "greater than 0" in err.detail


def test_missing_key_is_named(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("  mem_bandwidth_gb_s: 4.0\n", "")))
    assert err.key == "compute.mem_bandwidth_gb_s" and "missing" in err.detail


def test_old_utilization_key_points_to_efficiency(tmp_path):
    old = GOOD.replace("  efficiency:\n    dense_conv: 0.2\n", "  utilization: 0.2\n")
    err = error_for(write(tmp_path, old))
    assert err.key == "compute.utilization"
    assert "replaced by compute.efficiency" in err.detail and "depthwise_conv" in err.detail


def test_default_efficiencies_fill_missing_classes(tmp_path):
    p = load_profile_file(write(tmp_path, GOOD))
    eff = p.compute.efficiency
    assert eff.dense_conv == 0.2
    assert eff.depthwise_conv == DEFAULT_EFFICIENCY["depthwise_conv"]
    assert eff.elementwise == DEFAULT_EFFICIENCY["elementwise"]


def test_yaml_syntax_error_names_line_and_key(tmp_path):
    bad = GOOD.replace("  idle_w: 1.0", "  idle_w: [1.0")
    err = error_for(write(tmp_path, bad))
    # one wording for every YAML file (the scenario reader's): where it broke, where the
    # unclosed bracket opened, and the key of that line
    assert "invalid YAML at line" in err.detail and "flow sequence at line 11" in err.detail
    assert err.key == "power.idle_w"


def test_python_tag_is_refused_with_its_key(tmp_path):
    bad = GOOD.replace("idle_w: 1.0", "idle_w: !!python/object/apply:os.system ['echo hi']")
    err = error_for(write(tmp_path, bad))
    assert err.key == "power.idle_w" and "tag" in err.detail


def test_duplicate_key_and_non_mapping(tmp_path):
    err = error_for(write(tmp_path, GOOD + "name: again\n"))
    assert err.key == "name" and "duplicate" in err.detail
    err = error_for(write(tmp_path, "- a\n- b\n"))
    assert "mapping" in err.detail


def test_mode_specific_fields_are_checked(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("mode: float", "mode: int8")))
    assert err.key == "compute" and "int8_speedup" in err.detail
    err = error_for(write(tmp_path, GOOD.replace("mode: float", "mode: turbo")))
    assert err.key == "compute.mode" and "bit_serial" in err.detail


def test_source_fields_must_exist(tmp_path):
    err = error_for(write(tmp_path, GOOD.replace("[compute, power, memory]", "[compute.peek]")))
    assert err.key == "sources[0].fields[0]" and "compute.peek" in err.detail


def test_inline_link_errors_are_named(tmp_path):
    inline = GOOD.replace(
        "link: wifi",
        "link:\n  name: mylink\n  kind: wifi\n  up_mbps: -1\n  down_mbps: 10\n  tx_w: 0.3\n"
        "  rx_w: 0.3",
    )
    err = error_for(write(tmp_path, inline))
    assert err.key == "link.up_mbps"


def test_bad_latency_table_is_named(tmp_path):
    table = GOOD.replace(
        "mode: float",
        "mode: table\n  latency_table:\n    w_bits: [8, 32]\n    a_bits: [8, 32]\n"
        "    relative_latency: [[1.0, 4.0], [0.5, 4.0]]",
    )
    err = error_for(write(tmp_path, table))
    assert err.key == "compute.latency_table" and "decrease" in err.detail


# --------------------------------------------------------------------------- overrides


def test_override_nested_key(lib):
    pi = lib.get("raspberry_pi_4")
    q = apply_override(pi, {"power.active_w": 6.0, "link.up_mbps": 5.0})
    assert q.power.active_w == 6.0 and q.power.idle_w == pi.power.idle_w
    assert q.link.up_mbps == 5.0 and q.link.down_mbps == pi.link.down_mbps
    assert pi.power.active_w == 7.2  # the original is untouched
    same = apply_override(pi, {"power": {"active_w": 6.0}})
    assert same.power == q.power


def test_override_errors_name_the_key(lib):
    pi = lib.get("raspberry_pi_4")
    with pytest.raises(InputError) as info:
        apply_override(pi, {"power.activ_w": 6.0}, file="s.yaml", key_prefix="fleet[0].override")
    assert info.value.key == "fleet[0].override.power.activ_w"
    assert "active_w" in info.value.detail and info.value.file == "s.yaml"
    with pytest.raises(InputError) as info:
        apply_override(pi, {"memory.ram_mb": -1}, file="s.yaml", key_prefix="fleet[0].override")
    assert info.value.key == "fleet[0].override.memory.ram_mb"


def test_profile_for_applies_override_and_resolves_link(lib):
    p = lib.profile_for("raspberry_pi_4", {"link": "lte", "battery.capacity_wh": 40.0})
    assert p.link == lib.link("lte") and p.battery is not None
    q = lib.profile_for("raspberry_pi_4", {"link": "lte", "link.up_mbps": 3.0})
    assert q.link.kind == "lte" and q.link.up_mbps == 3.0
    with pytest.raises(InputError) as info:
        lib.profile_for("raspberry_pi_4", {"link": "lte5"}, file="s.yaml", key_prefix="fleet[1]")
    assert info.value.key == "fleet[1].override.link" and "did you mean 'lte'" in info.value.detail


def test_unknown_profile_name_suggests_a_close_match(lib):
    with pytest.raises(InputError) as info:
        lib.get("raspbery_pi_4", file="s.yaml", key="fleet[0].profile")
    err = info.value
    assert "did you mean 'raspberry_pi_4'" in err.detail and "jetson_nano" in err.detail
    assert err.key == "fleet[0].profile" and err.file == "s.yaml"


# ----------------------------------------------------------------------- user profiles


def test_user_directory_adds_and_overrides(tmp_path):
    mine = tmp_path / "my_devices"
    mine.mkdir()
    write(mine, GOOD, "board.yaml")
    pi = yaml.safe_load((builtin_profiles_dir() / "raspberry_pi_4.yaml").read_text())
    pi["power"]["active_w"] = 6.0
    (mine / "pi.yaml").write_text(yaml.safe_dump(pi))
    link = yaml.safe_load((builtin_profiles_dir() / "links" / "lte.yaml").read_text())
    link["up_mbps"] = 1.0
    (mine / "slow_lte.yaml").write_text(yaml.safe_dump(link))
    lib = ProfileLibrary.load(["./my_devices/"], base_dir=tmp_path)
    assert lib.get("my_board").link.name == "wifi"
    assert lib.get("raspberry_pi_4").power.active_w == 6.0
    assert lib.source_of("raspberry_pi_4") == mine / "pi.yaml"
    assert lib.link("lte").up_mbps == 1.0
    assert lib.get("midrange_phone").link.up_mbps == 1.0  # builtin devices see the user link


def test_missing_user_path_and_unknown_link(tmp_path):
    with pytest.raises(InputError) as info:
        ProfileLibrary.load(["nope/"], base_dir=tmp_path, source_file=tmp_path / "sc.yaml")
    assert info.value.key == "profiles[0]" and info.value.file == str(tmp_path / "sc.yaml")
    f = write(tmp_path, GOOD.replace("link: wifi", "link: wify"))
    with pytest.raises(InputError) as info:
        ProfileLibrary.load([f])
    assert info.value.file == str(f) and info.value.key == "link"
    assert "did you mean 'wifi'" in info.value.detail


def test_duplicate_names_in_one_folder(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(InputError) as info:
        ProfileLibrary.load([tmp_path])
    assert info.value.key == "name" and "a.yaml" in info.value.detail
