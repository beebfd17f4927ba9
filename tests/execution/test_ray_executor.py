"""Ray executor: same files as the inline executor, one context per actor, clear errors.

The Ray tests start a local Ray instance (2 CPUs, no dashboard) once for the module and are
skipped when Ray is not installed (``pip install 'fedsim[ray]'``). The missing-Ray error is
tested everywhere.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fedsim.algorithms.base import ClientTask, TrainHyper
from fedsim.config.loader import LoadedScenario, validate_scenario_dict
from fedsim.errors import InputError
from fedsim.execution import executors
from fedsim.execution.worker import WorkerSetup
from fedsim.runner.simulation import run_scenario
from tests.conftest import TINY

DETERMINISTIC_FILES = ("rounds.csv", "clients.csv", "bits.csv", "events.jsonl")

SYNTH = {"train_size": 240, "test_size": 60, "image_size": 8, "num_classes": 4}
CNN = {"channels": [4, 8], "hidden": [16], "batchnorm": True}


def tiny_setup(algorithm: str = "fedavg", threads: int = 1) -> WorkerSetup:
    return WorkerSetup(
        dataset="synthetic", data_root=None, data_seed=7, data_options=dict(SYNTH),
        model_name="cnn", model_options=dict(CNN), algorithm=algorithm,
        hyper=TrainHyper(lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=16,
                         local_epochs=1),
        algo_params={}, threads=threads,
    )


def tiny_tasks(n: int) -> list[ClientTask]:
    from fedsim.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, num_classes=4, image_size=8, options=CNN)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    return [
        ClientTask(round=0, client_id=c, bits=(32, 32, 32, 32), seed=100 + c, lr=0.05,
                   indices=rng.choice(240, size=40, replace=False), global_state=state,
                   budget_bits=8.0)
        for c in range(n)
    ]


# --------------------------------------------------------------------------------------------
# without Ray
# --------------------------------------------------------------------------------------------
def test_missing_ray_is_an_input_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    monkeypatch.delitem(sys.modules, "fedsim.execution.ray_executor", raising=False)
    with pytest.raises(InputError) as err:
        executors.make_executor("ray", tiny_setup(), 1)
    assert "pip install 'fedsim[ray]'" in str(err.value)
    assert err.value.key == "execution.executor"


# --------------------------------------------------------------------------------------------
# with a local Ray instance
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _loaded(data: dict[str, Any]) -> LoadedScenario:
    return LoadedScenario(scenario=validate_scenario_dict(data, file="<test>"), path=None,
                          raw=data)


def run_with(data: dict[str, Any], out: Path, name: str, *, ray: bool) -> Path:
    """Run ``data`` in process; with ``ray`` the client updates train on 2 Ray actors."""
    data = copy.deepcopy(data)
    if ray:
        data["execution"] = {"executor": "ray", "workers": 2, "threads": 1}
    return run_scenario(_loaded(data), output=out, run_name=name, progress=False).path


@pytest.mark.parametrize("method", ["fedavg", "fedmpq"])
def test_ray_run_is_byte_identical_to_inline(local_ray: Any, tmp_path: Path,
                                             method: str) -> None:
    data = copy.deepcopy(TINY)
    data["algorithm"] = {**data["algorithm"], "name": method}
    data["selection"] = {"per_round": 3}
    inline = run_with(data, tmp_path / "out", "inline", ray=False)
    on_ray = run_with(data, tmp_path / "out", "ray", ray=True)
    summary = json.loads((on_ray / "summary.json").read_text())
    assert summary["host"]["workers"] == 2
    for f in DETERMINISTIC_FILES:
        assert (inline / f).read_bytes() == (on_ray / f).read_bytes(), f"{f} differs on Ray"


def test_updates_match_inline_and_each_actor_builds_one_context(local_ray: Any) -> None:
    from fedsim.execution.executors import InlineExecutor
    from fedsim.execution.ray_executor import RayExecutor

    tasks = tiny_tasks(6)
    inline = InlineExecutor(tiny_setup())
    expected = [inline.submit(t).result() for t in tasks]
    ex = RayExecutor(tiny_setup(), 2)
    try:
        handles = [ex.submit(t) for t in tasks]
        got = [h.result() for h in handles]
        stats = local_ray.get([a.stats.remote() for a in ex._actors])
    finally:
        ex.shutdown()
    for e, g in zip(expected, got, strict=True):
        assert (e.client_id, e.samples, e.bits_up, e.train_loss) == (
            g.client_id, g.samples, g.bits_up, g.train_loss)
        for k, v in e.state.items():
            assert torch.equal(v, g.state[k]), k
    # both actors worked, each built its context (and loaded the dataset) exactly once
    assert sum(s["tasks"] for s in stats) == len(tasks)
    assert all(s["tasks"] >= 1 for s in stats)
    assert all(s["contexts"] == 1 for s in stats)
    assert len({s["pid"] for s in stats}) == 2
    # the same torch thread count as every other executor
    assert all(s["threads"] == 1 for s in stats)


def test_worker_error_surfaces_on_result(local_ray: Any) -> None:
    from fedsim.execution.ray_executor import RayExecutor

    task = tiny_tasks(1)[0]
    bad = ClientTask(**{**task.__dict__, "indices": np.array([10_000])})  # out of range
    ex = RayExecutor(tiny_setup(), 1)
    try:
        with pytest.raises(Exception, match="index"):
            ex.submit(bad).result()
        # the actor survives a failed task
        assert ex.submit(task).result().client_id == task.client_id
    finally:
        ex.shutdown()


def test_address_comes_from_scenario_then_environment(
    local_ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Joining a cluster: ``ray.init(address=...)``, the scenario's address first."""
    from fedsim.execution import ray_executor

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray_executor.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_executor.ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setenv(ray_executor.ADDRESS_ENV, "10.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert ray_executor.connect("10.0.0.2:6379", cpus=1) is True
    ray_executor.connect(None, cpus=1)
    monkeypatch.delenv(ray_executor.ADDRESS_ENV)
    ray_executor.connect(None, cpus=1)
    monkeypatch.delenv("RAY_ADDRESS")
    ray_executor.connect(None, cpus=64)
    assert [c.get("address") for c in calls] == ["10.0.0.2:6379", "10.0.0.1:6379", "auto", None]
    assert calls[-1]["num_cpus"] >= 64  # a private local instance fits every worker


def test_running_ray_is_reused_and_left_running(local_ray: Any) -> None:
    from fedsim.execution import ray_executor

    assert ray_executor.connect("10.0.0.2:6379", cpus=1) is False  # already initialised
    ex = ray_executor.RayExecutor(tiny_setup(), 1)
    ex.shutdown()
    assert local_ray.is_initialized()


def test_unreachable_cluster_is_an_input_error(
    local_ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedsim.execution import ray_executor

    def refuse(**kw: Any) -> None:
        raise ConnectionError(f"could not connect to {kw['address']}")

    monkeypatch.setattr(ray_executor.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_executor.ray, "init", refuse)
    with pytest.raises(InputError, match=r"10\.9\.9\.9:6379") as err:
        ray_executor.connect("10.9.9.9:6379", cpus=1)
    assert err.value.key == "execution.ray_address"


def test_worker_that_cannot_start_is_a_run_error(local_ray: Any) -> None:
    from fedsim.errors import RunError
    from fedsim.execution.ray_executor import RayExecutor

    setup = WorkerSetup(**{**tiny_setup().__dict__, "dataset": "fashion_mnist",
                           "data_root": "/nonexistent", "data_options": {}})
    with pytest.raises(RunError, match="could not start"):
        RayExecutor(setup, 1)
