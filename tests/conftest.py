"""Shared fixtures: tiny scenarios that train for real in a second or two."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY: dict = {
    "name": "tiny",
    "seed": 7,
    "rounds": 2,
    "data": {
        "dataset": "synthetic",
        "synthetic": {"train_size": 240, "test_size": 60, "image_size": 8, "num_classes": 4},
        "partition": {"kind": "dirichlet", "alpha": 1.0},
    },
    "model": {"name": "cnn", "options": {"channels": [4, 8], "hidden": [16]}},
    "algorithm": {"name": "fedavg", "lr": 0.05, "batch_size": 16, "local_epochs": 1},
    "fleet": [
        {"profile": "raspberry_pi_4", "count": 2, "budget_bits": 8},
        {"profile": "midrange_phone", "count": 2, "budget_bits": 4},
    ],
}


def write_scenario(tmp_path: Path, data: dict, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def tiny_scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path, TINY)
