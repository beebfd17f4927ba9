"""Build every part of a run from a validated scenario, before anything is written.

The promise "bad input never leaves a half-written results folder" rests on this module:
everything that can fail on user input -- profiles, dataset files, the split, model
options, a fleet in which nobody fits, the host's memory -- is resolved here, and
:func:`build_run` touches no output folder. The result, :class:`RunParts`, is what
:mod:`fedsim.runner.simulation` executes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.config.loader import LoadedScenario
from fedsim.config.schema import Scenario
from fedsim.engine.types import ClientDesc
from fedsim.errors import InputError
from fedsim.runner.budgets import ClientPlan, Planner, resolve_budgets, with_budgets
from fedsim.runner.cost import HardwareCost
from fedsim.runner.fleet import FleetClient, build_dynamics, resolve_fleet
from fedsim.seeding import derive_seed, rng
from fedsim.spec import ModelSpec


@dataclass
class RunData:
    """The clients' shards and the test set (``train``/``test`` are None in system-only)."""

    parts: list[np.ndarray]
    train: Any
    test: Any
    test_idx: np.ndarray | None
    channels: int
    image_size: int
    num_classes: int
    options: dict[str, Any]


@dataclass
class RunParts:
    """Everything a run needs, built and checked; nothing has been written yet."""

    loaded: LoadedScenario
    data: RunData
    model: Any
    spec: ModelSpec
    hyper: Any
    algorithm: Any
    fleet: list[FleetClient]
    clients: list[ClientDesc]
    cost: HardwareCost
    synthetic: Any  # a SyntheticPort in system-only mode, else None
    availability: Any
    dynamics: dict[int, Any]
    plans: list[ClientPlan]  # every client's priced budgets (excluded ones never train)
    planner: Planner
    worker_setup: Any
    evaluator: Any

    @property
    def scenario(self) -> Scenario:
        return self.loaded.scenario


def build_run(loaded: LoadedScenario) -> RunParts:
    """Resolve and check every part of the run described by ``loaded`` (InputError if not)."""
    import torch

    from fedsim.algorithms.base import ClientInfo
    from fedsim.execution.worker import configure_torch
    from fedsim.models import build_model, model_spec

    sc = loaded.scenario
    _refuse_if_population_too_large(loaded)
    fleet = resolve_fleet(loaded)
    data = load_run_data(loaded)
    if (sc.execution.device == "cuda" and not sc.system_only.enabled
            and not torch.cuda.is_available()):
        raise InputError("CUDA is not available on this machine (torch "
                         f"{torch.__version__}); use device: cpu", file=loaded.label,
                         key="execution.device")
    configure_torch(sc.execution.threads)
    torch.manual_seed(derive_seed(sc.seed, "init"))
    model = build_model(sc.model.name, in_channels=data.channels, num_classes=data.num_classes,
                        image_size=data.image_size, options=sc.model.resolved_options())
    spec = model_spec(model, name=sc.model.name,
                      input_shape=(data.channels, data.image_size, data.image_size))
    hyper, algorithm = _build_algorithm(sc, spec)
    _refuse_if_not_batchable(loaded, algorithm, model)
    cost = _build_cost(sc, spec, fleet, data.parts, algorithm.act_bits)
    availability, dynamics = build_dynamics(loaded, fleet)
    rule: Any = algorithm  # what bits a budget gets: the method's, or system-only's policy
    if sc.system_only.enabled:
        from fedsim.runner.synthetic import SyntheticRule

        rule = SyntheticRule(spec, sc.system_only.bits)
    planner = Planner(cost, rule, steps_for(sc), sc.algorithm.local_epochs)
    plans = resolve_budgets(planner, sc, fleet, dynamics, file=loaded.label)
    fleet = with_budgets(fleet, plans)
    algorithm.setup(model, [ClientInfo(c.client_id, c.budget_bits, len(data.parts[c.client_id]))
                            for c in fleet])
    joining = [c for c, p in zip(fleet, plans, strict=True) if not p.excluded]
    synthetic = _synthetic_port(sc, spec, joining)
    _refuse_if_nobody_fits(loaded, joining, cost, synthetic or algorithm)
    _refuse_if_host_too_small(loaded, spec, data.parts)
    clients = [ClientDesc(c.client_id, c.group, c.profile.name, c.profile.device_class,
                          c.budget_bits, len(data.parts[c.client_id])) for c in joining]
    return RunParts(
        loaded=loaded, data=data, model=model, spec=spec, hyper=hyper, algorithm=algorithm,
        fleet=fleet, clients=clients, cost=cost, synthetic=synthetic,
        availability=availability, dynamics=dynamics, plans=plans, planner=planner,
        worker_setup=_worker_setup(sc, data, hyper), evaluator=_evaluator(sc, data, algorithm,
                                                                          model),
    )


def steps_for(sc: Scenario) -> Callable[[int], int]:
    """Local steps per epoch for a shard of ``n`` samples (what the engine charges)."""
    from fedsim.algorithms.training import steps_per_epoch

    batch = sc.algorithm.batch_size
    return lambda n: steps_per_epoch(n, batch)


# -- data -----------------------------------------------------------------------------------
def load_run_data(loaded: LoadedScenario) -> RunData:
    """The dataset and its split; in system-only mode only the shapes (nothing is loaded)."""
    from fedsim.data import dataset_info, load_dataset

    sc = loaded.scenario
    options = data_options(sc)
    if sc.system_only.enabled:
        channels, image_size, num_classes = dataset_info(sc.data.dataset, options,
                                                         root=sc.data.root, seed=sc.seed)
        # one shared shard of sample indices: only its length matters (10^6 clients
        # would otherwise hold 4 GB of zeros)
        shard = np.zeros(sc.system_only.samples_per_client, dtype=np.int64)
        shard.flags.writeable = False
        parts = [shard] * sc.n_clients
        return RunData(parts, None, None, None, channels, image_size, num_classes, options)
    try:
        train, test = load_dataset(sc.data.dataset, root=sc.data.root, seed=sc.seed,
                                   options=options)
    except InputError as exc:
        raise InputError(exc.detail, file=loaded.label, key=exc.key or "data") from None
    except OSError as exc:
        raise InputError(f"cannot read the dataset: {exc.strerror}", file=loaded.label,
                         key="data.root") from None
    parts, test, test_idx = _partition(loaded, train, test)
    return RunData(parts, train, test, test_idx, train.channels, train.image_size,
                   train.num_classes, options)


def data_options(sc: Scenario) -> dict[str, Any]:
    """The dataset loader's options from the scenario (the same dict every worker gets)."""
    opts: dict[str, Any] = {}
    if sc.data.dataset == "synthetic":
        opts.update(sc.data.synthetic.model_dump())
    if sc.data.train_subset is not None:
        opts["train_subset"] = sc.data.train_subset
    if sc.data.test_subset is not None:
        opts["test_subset"] = sc.data.test_subset
    if sc.data.normalize is not None:
        opts["normalize"] = {"mean": list(sc.data.normalize.mean),
                             "std": list(sc.data.normalize.std)}
    return opts


def _partition(loaded: LoadedScenario, train: Any,
               test: Any) -> tuple[list[np.ndarray], Any, np.ndarray | None]:
    """Client shards (and possibly a test subset) from the partitioner or a split file."""
    from fedsim.data import ArrayDataset, partition
    from fedsim.data.splitfile import read_split

    sc = loaded.scenario
    pc = sc.data.partition
    if pc.kind == "file":
        assert pc.path is not None
        path = Path(pc.path)
        if not path.is_absolute():
            path = loaded.base_dir / path
        parts, test_idx = read_split(path, n_clients=sc.n_clients, n_train=len(train.y),
                                     n_test=len(test.y), file=loaded.label,
                                     key="data.partition.path", labels=train.y,
                                     num_classes=train.num_classes)
        if test_idx is not None:
            test = ArrayDataset(x=test.x[test_idx], y=test.y[test_idx],
                                num_classes=test.num_classes, name=test.name)
        return parts, test, test_idx
    try:
        parts = partition(
            train.y, sc.n_clients, kind=pc.kind, rng=rng(sc.seed, "partition"),
            alpha=pc.alpha, shards_per_client=pc.shards_per_client, min_share=pc.min_share,
        )
    except ValueError as exc:
        raise InputError(f"cannot partition {len(train.y)} samples over {sc.n_clients} "
                         f"clients: {exc}", file=loaded.label, key="data.partition") from None
    return parts, test, None


# -- training and cost ----------------------------------------------------------------------
def _build_algorithm(sc: Scenario, spec: ModelSpec) -> tuple[Any, Any]:
    """The method's server side (set up once the clients' budgets are known)."""
    from fedsim.algorithms.base import TrainHyper
    from fedsim.algorithms.registry import algorithm_class

    a = sc.algorithm
    hyper = TrainHyper(lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
                       batch_size=a.batch_size, local_epochs=a.local_epochs,
                       lr_milestones=tuple(a.lr_milestones), lr_gamma=a.lr_gamma)
    return hyper, algorithm_class(a.name)(hyper, a.method_params(), spec)


def _build_cost(sc: Scenario, spec: ModelSpec, fleet: Sequence[FleetClient],
                parts: Sequence[np.ndarray], act_bits: int | None) -> HardwareCost:
    """The engine's cost oracle (system-only runs price activations by their bit policy)."""
    if sc.system_only.enabled:
        act_bits = None if sc.system_only.bits == "float" else (act_bits or 4)
    return HardwareCost(fleet, spec, act_bits=act_bits, batch_size=sc.algorithm.batch_size,
                        samples=[len(p) for p in parts], seed=sc.seed)


def _synthetic_port(sc: Scenario, spec: ModelSpec, fleet: Sequence[FleetClient]) -> Any:
    """The port that replaces training in system-only runs (None otherwise)."""
    if not sc.system_only.enabled:
        return None
    from fedsim.runner.synthetic import SyntheticPort

    return SyntheticPort(spec, {c.client_id: c.budget_bits for c in fleet}, sc.system_only.bits)


def _worker_setup(sc: Scenario, data: RunData, hyper: Any) -> Any:
    """What a worker process needs to rebuild the dataset, model and method on its own."""
    from fedsim.algorithms.params import params_schema
    from fedsim.execution.worker import WorkerSetup

    a = sc.algorithm
    return WorkerSetup(
        dataset=sc.data.dataset, data_root=sc.data.root, data_seed=sc.seed,
        data_options=data.options, model_name=sc.model.name,
        model_options=sc.model.resolved_options(), algorithm=a.name, hyper=hyper,
        algo_params=params_schema(a.name).model_validate(a.model_extra or {}).model_dump(),
        threads=sc.execution.threads, device=sc.execution.device,
    )


def _evaluator(sc: Scenario, data: RunData, algorithm: Any, model: Any) -> Any:
    from fedsim.runner.ports import Evaluator

    if data.test is None:
        return None
    return Evaluator(algorithm.eval_model(model), data.test.x, data.test.y,
                     sc.execution.eval_batch_size)


# -- refusals -------------------------------------------------------------------------------
def _refuse_if_host_too_small(loaded: LoadedScenario, spec: ModelSpec,
                              parts: Sequence[np.ndarray]) -> None:
    """Refuse up front a run whose host memory estimate exceeds what is available, rather
    than being killed halfway. Estimate: the dataset in the main process and in every worker,
    plus per training process the bit-plane model (12 B x 8 planes per weight), its saved
    activations for one batch, and the evaluation batch."""
    import psutil

    sc = loaded.scenario
    if sc.system_only.enabled:
        return
    n_train = sum(len(p) for p in parts)
    data_b = n_train * 4 * max(1, spec.input_elems)
    procs = 1 + (sc.execution.workers if sc.execution.workers > 1
                 or sc.execution.executor == "process" else 0)
    acts = sum(lay.act_elems for lay in spec.layers) + spec.other_act_elems
    model_b = 12 * 8 * spec.total_params + 4 * acts * (sc.algorithm.batch_size * 2
                                                        + sc.execution.eval_batch_size)
    need = procs * (data_b + model_b) + 300 * 2**20 * procs  # + interpreter and torch
    avail = psutil.virtual_memory().available
    if need > avail:
        raise InputError(
            f"this run needs about {need / 2**30:.1f} GiB of host memory ({procs} "
            f"process(es) x (data {data_b / 2**30:.2f} GiB + model {model_b / 2**30:.2f} GiB "
            f"+ runtime)), but only {avail / 2**30:.1f} GiB is available; use fewer workers, "
            "a smaller data.train_subset or a smaller batch",
            file=loaded.label, key="execution.workers",
        )


#: Host bytes per client of a system-only run (fleet, plans, engine arrays: measured 2.3 KB at
#: 10^6 clients), per client selected in a round (its arrays, events and records while the
#: round is written: measured 1.1 KB), and the interpreter with torch and pyarrow loaded.
BYTES_PER_CLIENT = 2_600
BYTES_PER_SELECTED = 1_300
BASE_BYTES = 700 * 2**20


def population_bytes(sc: Scenario) -> int:
    """Estimated peak host memory of a system-only run (docs/performance.md)."""
    return (BASE_BYTES + BYTES_PER_CLIENT * sc.n_clients
            + BYTES_PER_SELECTED * min(sc.n_clients, sc.clients_per_round()))


def _refuse_if_population_too_large(loaded: LoadedScenario) -> None:
    """A population too large for this host is refused before anything is built (building
    10^8 clients would exhaust memory long before the first round)."""
    import psutil

    sc = loaded.scenario
    if not sc.system_only.enabled:
        return
    need, avail = population_bytes(sc), psutil.virtual_memory().available
    if need > avail:
        raise InputError(
            f"a population of {sc.n_clients:,} clients ({sc.clients_per_round():,} per round) "
            f"needs about {need / 2**30:.1f} GiB of host memory, but only "
            f"{avail / 2**30:.1f} GiB is available; use fewer clients or fewer per round",
            file=loaded.label, key="fleet")


def _refuse_if_not_batchable(loaded: LoadedScenario, algorithm: Any, model: Any) -> None:
    """``execution.batch_clients`` needs a plain float SGD method and a model that is a
    stack of the layers batched training knows (``execution.stacked``)."""
    sc = loaded.scenario
    if sc.execution.batch_clients <= 1 or sc.system_only.enabled:
        return
    from fedsim.execution.batched import BATCHABLE, batchable
    from fedsim.execution.stacked import stackable

    if not batchable(algorithm):
        raise InputError(f"batched training supports {', '.join(BATCHABLE)}, not "
                         f"{sc.algorithm.name}; set batch_clients: 1",
                         file=loaded.label, key="execution.batch_clients")
    why = stackable(model)
    if why is not None:
        raise InputError(f"batched training cannot run model {sc.model.name!r}: {why}; set "
                         "batch_clients: 1", file=loaded.label, key="execution.batch_clients")


def check_batching(loaded: LoadedScenario) -> None:
    """The same refusal without building the run (``fedsim validate``): the method's
    class and a model of the dataset's shape."""
    sc = loaded.scenario
    if sc.execution.batch_clients <= 1 or sc.system_only.enabled:
        return
    from fedsim.algorithms.registry import algorithm_class
    from fedsim.data import dataset_info
    from fedsim.models import build_model

    channels, size, classes = dataset_info(sc.data.dataset, data_options(sc),
                                           root=sc.data.root, seed=sc.seed)
    model = build_model(sc.model.name, in_channels=channels, num_classes=classes,
                        image_size=size, options=sc.model.resolved_options())
    _refuse_if_not_batchable(loaded, algorithm_class(sc.algorithm.name), model)


def _refuse_if_nobody_fits(loaded: LoadedScenario, fleet: Sequence[FleetClient],
                           cost: HardwareCost, port: Any) -> None:
    """If no client could ever train the model at its first-round bits, say so up front."""
    bits = port.downlink_bits(0, [c.client_id for c in fleet])
    problems = {c.client_id: cost.memory_problem(c.client_id, bits[c.client_id]) for c in fleet}
    if fleet and all(problems.values()):
        first = fleet[0]
        raise InputError(
            f"no client can fit this model in memory; e.g. {first.profile.name}: "
            f"{problems[first.client_id]}",
            file=loaded.label, key="fleet",
        )
