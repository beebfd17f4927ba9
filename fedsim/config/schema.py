"""Typed scenario schema.

A scenario file is validated into these frozen pydantic models at the door: unknown keys,
wrong types and out-of-range values are rejected with the key path named (see
:mod:`fedsim.config.loader`). Everything here is torch-free so `fedsim validate` is fast.

This module owns the names of the datasets (:data:`DATASET_NAMES`) and zoo models
(:data:`MODEL_NAMES`) and the schemas of their options: :mod:`fedsim.data` and
:mod:`fedsim.models` validate the options they are given with these same schemas, so a
scenario and a direct call reject the same values with the same key paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fedsim.algorithms.params import ALGORITHM_PARAMS, params_schema


class _Strict(BaseModel):
    """Unknown keys refused; no NaN or infinity anywhere (a NaN deadline would never fire).
    Types are strict too: the loader validates scenarios in strict mode."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


DATASET_NAMES: tuple[str, ...] = ("digits", "fashion_mnist", "cifar10", "cifar100", "synthetic")


class PartitionConfig(_Strict):
    """How the training split is dealt to clients (docs/algorithm.md section 1: supp. eq. 1-2)."""

    kind: Literal["dirichlet", "iid", "shards", "file"] = "dirichlet"
    alpha: Annotated[float, Field(gt=0, le=1e6)] = 0.5
    shards_per_client: Annotated[int, Field(ge=1, le=10_000)] = 2
    min_share: Annotated[float, Field(ge=0, lt=1)] | None = None
    path: str | None = None  # kind 'file': JSON with train_indices_per_client[, test_indices]

    @model_validator(mode="after")
    def _file_needs_path(self) -> PartitionConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("kind 'file' needs a 'path' to a split JSON file")
        return self


class SyntheticOptions(_Strict):
    """``data.synthetic``: the generated dataset's sizes (integers only: a quoted ``"3"`` is
    a mistake, not a number)."""

    train_size: Annotated[int, Field(ge=10, le=10_000_000, strict=True)] = 2000
    test_size: Annotated[int, Field(ge=10, le=10_000_000, strict=True)] = 500
    num_classes: Annotated[int, Field(ge=2, le=1000, strict=True)] = 10
    channels: Annotated[int, Field(ge=1, le=16, strict=True)] = 1
    image_size: Annotated[int, Field(ge=4, le=256, strict=True)] = 28


class NormalizeConfig(_Strict):
    """Fixed per-channel statistics, ``x <- (x/255 - mean) / std`` (e.g. the full set's, as
    another codebase uses them); absent: the training split's own statistics."""

    mean: Annotated[list[Annotated[float, Field(ge=-1e3, le=1e3)]], Field(min_length=1)]
    std: Annotated[list[Annotated[float, Field(gt=0, le=1e3)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _same_length(self) -> NormalizeConfig:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} entries but std {len(self.std)}")
        return self


def _loadable_plugin(kind: str, name: str) -> bool:
    """True for a plug-in (import path or entry point) that loads and can be called; False
    for a name that is not a plug-in; ValueError saying why for a broken one."""
    from fedsim import plugins

    if not plugins.is_plugin(kind, name):
        return False
    try:
        plugins.check_callable(kind, name)
    except plugins.PluginError as exc:
        raise ValueError(f"{kind} plug-in {exc}") from None
    return True


def known_dataset(name: str) -> str:
    """``name`` if it is a dataset fedsim loads (built in, or a plug-in: ``module:function``
    or an installed ``fedsim.datasets`` entry point); ValueError listing them otherwise."""
    if name in DATASET_NAMES or _loadable_plugin("dataset", name):
        return name
    raise ValueError(f"unknown dataset '{name}'; expected one of {', '.join(DATASET_NAMES)}, "
                     "or a plug-in module:function")


SubsetSize = Annotated[int, Field(ge=1)]


class DatasetOptions(_Strict):
    """The options every dataset takes (``data.train_subset`` ...), as the data loaders
    accept them; :class:`DataConfig` declares the same fields with the same types."""

    train_subset: SubsetSize | None = None
    test_subset: SubsetSize | None = None
    normalize: NormalizeConfig | None = None


class DataConfig(_Strict):
    dataset: str = "digits"
    root: str | None = None
    partition: PartitionConfig = PartitionConfig()
    train_subset: SubsetSize | None = None
    test_subset: SubsetSize | None = None
    normalize: NormalizeConfig | None = None
    synthetic: SyntheticOptions = SyntheticOptions()

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        return known_dataset(v)


class CnnOptions(_Strict):
    """``cnn``: conv widths, FC widths (may be empty), BatchNorm; integers and booleans only
    (``batchnorm: "yes"`` is a mistake, not true)."""

    channels: Annotated[
        list[Annotated[int, Field(ge=1, le=4096, strict=True)]], Field(min_length=1)
    ] = [16, 32]
    hidden: list[Annotated[int, Field(ge=1, le=65536, strict=True)]] = [64]
    batchnorm: Annotated[bool, Field(strict=True)] = True


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class ResNetOptions(_Strict):
    """``resnet*``: ``shortcut`` A (parameter-free) or B (1x1 conv + BatchNorm); any case."""

    shortcut: Annotated[Literal["A", "B"], BeforeValidator(_upper)] = "A"


#: Zoo model name -> the schema of its ``model.options`` (the one list of zoo model names).
MODEL_OPTIONS: dict[str, type[BaseModel]] = {
    "cnn": CnnOptions,
    **{f"resnet{depth}": ResNetOptions for depth in (20, 32, 44, 56)},
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_OPTIONS)


class TorchvisionOptions(BaseModel):
    """A torchvision builder's keyword arguments: checked by building the model on the meta
    device (fedsim.models.tvzoo), since each builder takes its own."""

    model_config = ConfigDict(extra="allow")


class ModelConfig(_Strict):
    name: str = "cnn"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v.startswith("torchvision."):
            from fedsim.errors import InputError
            from fedsim.models.tvzoo import check_builder

            try:
                check_builder(v)
            except InputError as exc:
                raise ValueError(exc.detail) from None
            return v
        if v in MODEL_NAMES or _loadable_plugin("model", v):
            return v
        raise ValueError(f"unknown model '{v}'; expected one of {', '.join(MODEL_NAMES)}, "
                         "torchvision.<classification model> (e.g. torchvision.resnet18) or a "
                         "plug-in module:function")

    @property
    def is_torchvision(self) -> bool:
        return self.name.startswith("torchvision.")

    @property
    def is_plugin(self) -> bool:
        return self.name not in MODEL_NAMES and not self.is_torchvision

    def options_schema(self) -> type[BaseModel]:
        if self.is_torchvision or self.is_plugin:  # keyword arguments of the builder
            return TorchvisionOptions
        return MODEL_OPTIONS[self.name]

    def resolved_options(self) -> dict[str, Any]:
        """Options with defaults filled in (validated by the loader, with key paths)."""
        if self.is_torchvision or self.is_plugin:  # the builder's keyword arguments
            return dict(self.options)
        return self.options_schema().model_validate(self.options).model_dump()


class RechargeConfig(_Strict):
    """A charging window every ``period_s`` (e.g. overnight on a charger)."""

    period_s: Annotated[float, Field(gt=0)] = 86_400.0
    start_s: Annotated[float, Field(ge=0)] = 0.0
    duration_s: Annotated[float, Field(gt=0)] = 28_800.0
    power_w: Annotated[float, Field(gt=0, le=10_000)] = 10.0

    @model_validator(mode="after")
    def _fits(self) -> RechargeConfig:
        if self.duration_s > self.period_s:
            raise ValueError("duration_s must not exceed period_s")
        return self


class BatteryConfig(_Strict):
    """A battery that pays every joule of compute, radio and idle.

    ``capacity_wh`` defaults to the profile's battery; ``initial`` and ``floor`` are fractions
    of capacity (a client at its floor stops participating)."""

    capacity_wh: Annotated[float, Field(gt=0, le=1e6)] | None = None
    initial: Annotated[float, Field(ge=0, le=1)] = 1.0
    floor: Annotated[float, Field(ge=0, lt=1)] = 0.1
    recharge: RechargeConfig | None = None


class AvailabilityConfig(_Strict):
    """When clients are online: always, a diurnal cycle, a two-state Markov chain, or a trace
    file (CSV with columns client,start_s,end_s; client = id, group name or device class)."""

    model: Literal["always", "diurnal", "markov", "trace"] = "always"
    period_s: Annotated[float, Field(gt=0)] = 86_400.0
    online_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    mean_on_s: Annotated[float, Field(gt=0)] = 3_600.0
    mean_off_s: Annotated[float, Field(gt=0)] = 3_600.0
    trace: str | None = None
    unlisted: Literal["online", "offline"] = "offline"

    @model_validator(mode="after")
    def _trace_path(self) -> AvailabilityConfig:
        if self.model == "trace" and not self.trace:
            raise ValueError("model 'trace' needs a 'trace' file path")
        return self


class AutoBudget(_Strict):
    """``budget_bits: auto``: the largest precision the device can afford (docs/budgets.md).

    The constraints are the device's usable memory, the round deadline
    (``selection.deadline_s``) at its link, the battery's spendable energy, and
    ``energy_j``, an optional allowance of energy per round. ``adapt: battery`` re-derives the
    budget every round from the battery's level, so an emptying device steps down in
    precision instead of dropping out.
    """

    auto: Literal[True] = True
    energy_j: Annotated[float, Field(gt=0)] | None = None
    adapt: Literal["none", "battery"] = "none"


BudgetSpec = Annotated[float, Field(ge=1, le=32)] | Literal["auto"] | AutoBudget


def auto_budget(spec: BudgetSpec) -> AutoBudget | None:
    """The automatic-budget settings of a budget key, None for a fixed budget."""
    if isinstance(spec, AutoBudget):
        return spec
    return AutoBudget() if spec == "auto" else None


class FleetGroup(_Strict):
    """A group of identical clients: one hardware profile, one bit budget (or ``auto``)."""

    profile: str
    count: Annotated[int, Field(ge=1, le=1_000_000)]
    budget_bits: BudgetSpec | None = None  # None: the scenario's budget_bits
    link: str | None = None
    override: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    failure_prob: Annotated[float, Field(ge=0, le=1)] = 0.0
    battery: BatteryConfig | None = None
    availability: AvailabilityConfig | None = None

    @property
    def label(self) -> str:
        return self.name or self.profile


class SelectionConfig(_Strict):
    """Which clients train each round and how long the server waits for them."""

    per_round: Annotated[int, Field(ge=1)] | None = None
    fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    deadline_s: Annotated[float, Field(gt=0)] | None = None
    policy: Literal["random", "energy", "oort"] = "random"
    over_commit: Annotated[float, Field(ge=0, le=10)] = 0.0
    wait_s: Annotated[float, Field(gt=0)] = 60.0
    max_wait_s: Annotated[float, Field(gt=0)] = 30 * 86_400.0

    @model_validator(mode="after")
    def _one_of(self) -> SelectionConfig:
        if self.per_round is not None and self.fraction is not None:
            raise ValueError("give either per_round or fraction, not both")
        return self


class ExecutionConfig(_Strict):
    """Where real training runs. Never changes results, only host time."""

    executor: Literal["inline", "process", "ray"] = "inline"
    ray_address: str | None = None  # an existing cluster ("auto", "ray://host:10001"), or local
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    threads: Annotated[int, Field(ge=1, le=256)] = 1
    device: Literal["cpu", "cuda"] = "cpu"
    eval_batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1024
    # how the run folder holds events and client records: text (events.jsonl, clients.csv,
    # bits.csv), Parquet parts (fedsim.records.columnar), or Parquet above ~200k client-rounds
    events: Literal["auto", "jsonl", "parquet"] = "auto"
    # train up to this many clients of a round at once, vectorised (execution.batched):
    # same batches and optimiser per client, float-noise differences; 1 = one at a time
    batch_clients: Annotated[int, Field(ge=1, le=4096)] = 1

    @model_validator(mode="after")
    def _batching_runs_inline(self) -> ExecutionConfig:
        if self.batch_clients > 1 and (self.executor != "inline" or self.workers > 1):
            raise ValueError("batch_clients: batched training runs in the main process "
                             "(executor inline, workers 1)")
        if self.batch_clients > 1 and self.device != "cpu":
            raise ValueError("batch_clients: batched training runs on the CPU (device: cpu)")
        return self


class SystemOnlyConfig(_Strict):
    """Fleet studies at population scale: engine, cost model, network, availability and
    selection without training. Bit vectors follow ``bits``: ``budget`` (floor of the budget
    in every layer), ``fedmpq`` (FedMPQ's first allocation: pruning-growing from 8 bits,
    largest layers first), ``max`` (8 everywhere) or ``float`` (32).

    ``vectorised`` computes each synchronous round as arrays (the same events and records
    as the per-client engine, 50-100x faster at scale); settings it does not cover fall back
    to the per-client engine with a note. ``false`` forces the per-client engine."""

    enabled: bool = False
    samples_per_client: Annotated[int, Field(ge=1, le=10_000_000)] = 500
    bits: Literal["budget", "fedmpq", "max", "float"] = "fedmpq"
    vectorised: bool = True


class FedBuffConfig(_Strict):
    """Buffered asynchronous aggregation (FedBuff): aggregate every ``buffer_k`` reports."""

    buffer_k: Annotated[int, Field(ge=1, le=100_000)] = 5
    concurrency: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    server_lr: Annotated[float, Field(gt=0, le=100)] = 1.0
    staleness: Literal["sqrt", "poly", "constant"] = "sqrt"


class AlgorithmConfig(BaseModel):
    """Algorithm name, shared training hyperparameters and the method's own parameters.

    Method-specific keys sit beside the shared ones (``algorithm.lam`` for FedMPQ); they
    are validated against the method's own schema from :mod:`fedsim.algorithms.params`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "fedavg"
    lr: Annotated[float, Field(gt=0, le=100)] = 0.05
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 5e-4
    local_epochs: Annotated[int, Field(ge=1, le=10_000)] = 1
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 32
    lr_milestones: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    lr_gamma: Annotated[float, Field(gt=0, le=1)] = 0.1

    @field_validator("name")
    @classmethod
    def _known_algorithm(cls, v: str) -> str:
        if v in ALGORITHM_PARAMS:
            return v
        from fedsim import plugins

        if plugins.is_plugin("algorithm", v):
            try:
                plugins.algorithm_plugin(v)
            except plugins.PluginError as exc:
                raise ValueError(f"algorithm plug-in {exc}") from None
            return v
        raise ValueError(f"unknown algorithm '{v}'; expected one of "
                         f"{', '.join(sorted(ALGORITHM_PARAMS))}, or a plug-in module:Class")

    def method_params(self) -> BaseModel:
        """The method's own parameters with defaults filled in."""
        return params_schema(self.name).model_validate(self.model_extra or {})


class Scenario(_Strict):
    """A complete, validated simulation scenario."""

    name: str = "scenario"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    rounds: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    fleet: Annotated[list[FleetGroup], Field(min_length=1)]
    budget_bits: BudgetSpec = 8  # the budget of fleet groups that give none
    profiles: list[str] = Field(default_factory=list)
    selection: SelectionConfig = SelectionConfig()
    execution: ExecutionConfig = ExecutionConfig()
    availability: AvailabilityConfig = AvailabilityConfig()
    mode: Literal["sync", "async"] = "sync"
    fedbuff: FedBuffConfig = FedBuffConfig()
    system_only: SystemOnlyConfig = SystemOnlyConfig()
    seeds: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}", v):
            raise ValueError("expected letters, digits, '_', '-' or '.' (used in folder names)")
        return v

    @property
    def n_clients(self) -> int:
        return sum(g.count for g in self.fleet)

    def group_budget(self, index: int) -> BudgetSpec:
        """Fleet group ``index``'s budget: its own, else the scenario's."""
        own = self.fleet[index].budget_bits
        return self.budget_bits if own is None else own

    def clients_per_round(self) -> int:
        n = self.n_clients
        if self.selection.per_round is not None:
            return min(self.selection.per_round, n)
        if self.selection.fraction is not None:
            return max(1, round(self.selection.fraction * n))
        return n
