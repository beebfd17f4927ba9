"""The run loop: build every part from a validated scenario, wire the engine to training,
own the run folder. The CLI only calls :func:`run_scenario`.

Order matters for the promise "bad input never leaves a half-written results folder":
everything that can fail on user input (profiles, dataset files, model options, memory of
the host) is resolved *before* the run folder is created.
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fedsim.config.loader import LoadedScenario
from fedsim.config.schema import Scenario
from fedsim.cost_oracle import HardwareCost
from fedsim.engine.types import ClientDesc
from fedsim.errors import InputError, RunError
from fedsim.fleet import FleetClient, build_dynamics, group_labels, resolve_fleet
from fedsim.seeding import derive_seed, rng
from fedsim.spec import ModelSpec
from fedsim.trainer_port import Evaluator, TrainingPort

__all__ = ["FleetClient", "HardwareCost", "TrainingPort", "build_dynamics", "group_labels",
           "resolve_fleet", "run_scenario"]


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    path: Path
    summary: dict[str, Any]
    rounds: list[Any] = field(default_factory=list)


def resolved_scenario_dict(sc: Scenario) -> dict[str, Any]:
    data = sc.model_dump(mode="json")
    data["algorithm"] = {**data["algorithm"], **sc.algorithm.method_params().model_dump()}
    data["model"]["options"] = sc.model.resolved_options()
    return data


def _host_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "platform": platform.platform(),
    }


def _peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_workers_mb": round(children, 1)}


def run_scenario(
    loaded: LoadedScenario,
    *,
    output: Path,
    run_name: str | None = None,
    progress: bool | None = None,
    resume_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> RunOutcome:
    """Run one scenario end to end and publish its run folder. Raises InputError/RunError.

    With ``resume_dir`` (a run's hidden ``.<id>.partial`` folder) the run continues from its
    last checkpoint and ends with files byte-identical to an uninterrupted run.
    """
    import torch

    from fedsim.algorithms.base import ClientInfo, TrainHyper
    from fedsim.algorithms.params import ALGORITHM_PARAMS
    from fedsim.algorithms.registry import algorithm_class
    from fedsim.algorithms.training import steps_per_epoch
    from fedsim.data import load_dataset
    from fedsim.engine.core import Engine, EngineConfig
    from fedsim.execution.executors import make_executor
    from fedsim.execution.worker import WorkerSetup, configure_torch
    from fedsim.models import build_model, model_spec
    from fedsim.progress import RoundProgress

    host_t0 = time.perf_counter()
    sc = loaded.scenario
    fleet = resolve_fleet(loaded)

    # Data (an absent dataset is an input error, raised before anything is written).
    data_options = _data_options(sc)
    system_only = sc.system_only.enabled
    if system_only:  # shapes only: no samples are loaded, no client trains
        from fedsim.data import dataset_info

        channels, image_size, num_classes = dataset_info(sc.data.dataset, data_options)
        parts = [np.zeros(sc.system_only.samples_per_client, dtype=np.int64)
                 for _ in range(sc.n_clients)]
        test = test_idx = None
    else:
        try:
            train, test = load_dataset(sc.data.dataset, root=sc.data.root, seed=sc.seed,
                                       options=data_options)
        except InputError as exc:
            raise InputError(exc.detail, file=loaded.label, key=exc.key or "data") from None
        except OSError as exc:
            raise InputError(f"cannot read the dataset: {exc.strerror}", file=loaded.label,
                             key="data.root") from None
        parts, test, test_idx = _partition(loaded, train, test)
        channels, image_size, num_classes = train.channels, train.image_size, train.num_classes
    if sc.execution.device == "cuda" and not system_only and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine (torch "
                         f"{torch.__version__}); use device: cpu", file=loaded.label,
                         key="execution.device")

    configure_torch(sc.execution.threads)
    torch.manual_seed(derive_seed(sc.seed, "init"))
    model_options = sc.model.resolved_options()
    model = build_model(sc.model.name, in_channels=channels, num_classes=num_classes,
                        image_size=image_size, options=model_options)
    spec = model_spec(model, name=sc.model.name, input_shape=(channels, image_size, image_size))

    a = sc.algorithm
    hyper = TrainHyper(lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
                       batch_size=a.batch_size, local_epochs=a.local_epochs,
                       lr_milestones=tuple(a.lr_milestones), lr_gamma=a.lr_gamma)
    params = a.method_params()
    algorithm = algorithm_class(a.name)(hyper, params, spec)
    samples = [len(p) for p in parts]
    algorithm.setup(model, [ClientInfo(c.client_id, c.budget_bits, samples[c.client_id])
                            for c in fleet])

    act_bits = algorithm.act_bits
    if system_only:
        act_bits = None if sc.system_only.bits == "float" else (act_bits or 4)
    cost = HardwareCost(fleet, spec, act_bits=act_bits, batch_size=a.batch_size,
                        samples=samples, seed=sc.seed)
    clients = [
        ClientDesc(c.client_id, c.group, c.profile.name, c.profile.device_class,
                   c.budget_bits, samples[c.client_id])
        for c in fleet
    ]
    synthetic = None
    if system_only:
        from fedsim.engine.synthetic import SyntheticPort

        synthetic = SyntheticPort(spec, {c.client_id: c.budget_bits for c in fleet},
                                  sc.system_only.bits)
    _refuse_if_nobody_fits(loaded, fleet, cost, synthetic or algorithm)
    availability, dynamics = build_dynamics(loaded, fleet)
    _refuse_if_host_too_small(loaded, spec, parts, sc, system_only)

    setup = WorkerSetup(
        dataset=sc.data.dataset, data_root=sc.data.root, data_seed=sc.seed,
        data_options=data_options, model_name=sc.model.name, model_options=model_options,
        algorithm=a.name, hyper=hyper,
        algo_params=ALGORITHM_PARAMS[a.name].model_validate(a.model_extra or {}).model_dump(),
        threads=sc.execution.threads, device=sc.execution.device,
    )
    evaluator = None if test is None else Evaluator(algorithm.eval_model(model), test.x,
                                                    test.y, sc.execution.eval_batch_size)

    from fedsim.checkpoint import load_checkpoint, save_checkpoint
    from fedsim.rundir import RunFolder, unique_run_id

    ckpt = None
    if resume_dir is not None:
        output = resume_dir.parent
        run_id = resume_dir.name[1:-len(".partial")]
        ckpt = load_checkpoint(resume_dir)
        if ckpt is not None and sc.mode == "async":
            raise InputError("resuming is supported for synchronous runs only (mode: sync)",
                             file=loaded.label, key="mode")
        folder = RunFolder(output, run_id, offsets=ckpt["offsets"] if ckpt else None)
    else:
        output.mkdir(parents=True, exist_ok=True)
        run_id = unique_run_id(output, run_name or f"{sc.name}-{a.name}-s{sc.seed}")
        folder = RunFolder(output, run_id)
    folder.layer_params = [(lay.name, lay.params) for lay in spec.quantized_layers]
    executor = None
    rounds: list[Any] = []
    if ckpt is not None:
        algorithm.global_state = dict(ckpt["global_state"])
        algorithm.load_server_state(ckpt["server_state"])
        rounds = read_round_records(folder.path / "rounds.csv")
        folder.status_counts = dict(ckpt["status_counts"])
    bar = RoundProgress(total=sc.rounds, enabled=progress)
    if ckpt is not None:
        bar.skip(len(rounds))
    keep_partial = False
    try:
        if ckpt is None:
            folder.write_text("scenario.yaml", yaml.safe_dump(resolved_scenario_dict(sc),
                                                               sort_keys=False))
            from fedsim.data.splitfile import split_document

            if not system_only:
                folder.write_text("partition.json", json.dumps(split_document(
                    parts, test_idx, sc.data.dataset), separators=(",", ":")) + "\n")
            folder.write_json("run.json", {
                "run_id": run_id,
                "source": str(loaded.path.resolve()) if loaded.path else None,
                "overrides": list(overrides),
            })
        port: Any
        if synthetic is not None:
            port = synthetic
        else:
            executor = make_executor(sc.execution.executor, setup, sc.execution.workers,
                                     ray_address=sc.execution.ray_address, train=train)
            port = TrainingPort(algorithm, executor, parts, evaluator)
            port.server_lr = sc.fedbuff.server_lr
            port.staleness_fn = sc.fedbuff.staleness

        engine_ref: list[Any] = []

        class _Obs:
            on_event = folder.on_event
            on_client = folder.on_client

            @staticmethod
            def on_round(rec: Any) -> None:
                nonlocal keep_partial
                folder.on_round(rec)
                rounds.append(rec)
                offsets = folder.sync()
                save_checkpoint(folder.path, {
                    "global_state": algorithm.global_state,
                    "server_state": algorithm.server_state(),
                    "engine": engine_ref[0].snapshot(rec.round + 1),
                    "offsets": offsets,
                    "status_counts": dict(folder.status_counts),
                })
                keep_partial = True
                bar.update(rec)

        sel = sc.selection
        engine = Engine(
            EngineConfig(seed=sc.seed, rounds=sc.rounds, per_round=sc.clients_per_round(),
                         epochs=a.local_epochs, deadline_s=sel.deadline_s, mode=sc.mode,
                         over_commit=sel.over_commit, policy=sel.policy,
                         buffer_k=sc.fedbuff.buffer_k, concurrency=sc.fedbuff.concurrency,
                         wait_s=sel.wait_s, max_wait_s=sel.max_wait_s),
            clients, port, cost, _Obs(),
            steps_for=lambda n: steps_per_epoch(n, a.batch_size),
            availability=availability, dynamics=dynamics,
            **({} if ckpt is None else {
                "start_round": ckpt["engine"]["next_round"],
                "start_time_s": ckpt["engine"]["now"],
                "start_energy_j": ckpt["engine"]["fleet_energy_j"]}),
        )
        engine_ref.append(engine)
        if ckpt is not None:
            engine.restore(ckpt["engine"])
            keep_partial = True
        engine.run()
        summary = _summary(sc, run_id, rounds, spec, host_t0, executor=sc.execution)
        summary["stopped_reason"] = engine.stopped_reason
        summary["client_rounds"] = _client_round_counts(folder.status_counts)
        folder.write_json("summary.json", summary)
        (folder.path / "checkpoint.pt").unlink(missing_ok=True)
        path = folder.commit()
    except BaseException as exc:
        if keep_partial and not isinstance(exc, InputError):
            folder.suspend()
            if isinstance(exc, KeyboardInterrupt | RunError) and sc.mode == "sync":
                raise RunError(
                    f"{type(exc).__name__ if isinstance(exc, KeyboardInterrupt) else exc}; "
                    f"the run is checkpointed: continue it with "
                    f"`fedsim run --resume {folder.path}`"
                ) from exc
        else:
            folder.abort()
        raise
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
    return RunOutcome(path=path, summary=summary, rounds=rounds)


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


def read_round_records(path: Path) -> list[Any]:
    """RoundRecords back from rounds.csv (for the summary of a resumed run)."""
    import csv

    from fedsim.engine.records import RoundRecord

    out = []
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append(RoundRecord(
                round=int(row["round"]), sim_time_s=float(row["sim_time_s"]),
                energy_j=float(row["energy_j"]), accuracy=float(row["accuracy"]),
                loss=float(row["loss"]), participants=int(row["participants"]),
                stragglers=int(row["stragglers"]), selected=int(row["selected"]),
                infeasible=int(row["infeasible"]), round_s=float(row["round_s"]),
                round_energy_j=float(row["round_energy_j"]), dropouts=int(row["dropouts"]),
                offline=int(row["offline"]), battery=int(row["battery"]),
            ))
    return out


def _data_options(sc: Scenario) -> dict[str, Any]:
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


def _refuse_if_host_too_small(loaded: LoadedScenario, spec: ModelSpec,
                              parts: Sequence[np.ndarray], sc: Scenario,
                              system_only: bool) -> None:
    """Refuse up front a run whose host memory estimate exceeds what is available, rather
    than being killed halfway. Estimate: the dataset in the main process and in every worker,
    plus per training process the bit-plane model (12 B x 8 planes per weight), its saved
    activations for one batch, and the evaluation batch."""
    import psutil

    if system_only:
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


def _refuse_if_nobody_fits(loaded: LoadedScenario, fleet: Sequence[FleetClient],
                           cost: HardwareCost, algorithm: Any) -> None:
    """If no client could ever train the model at its first-round bits, say so up front."""
    bits = algorithm.downlink_bits(0, [c.client_id for c in fleet])
    problems = {c.client_id: cost.memory_problem(c.client_id, bits[c.client_id]) for c in fleet}
    if fleet and all(problems.values()):
        first = fleet[0]
        raise InputError(
            f"no client can fit this model in memory; e.g. {first.profile.name}: "
            f"{problems[first.client_id]}",
            file=loaded.label, key="fleet",
        )


def _client_round_counts(counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values())
    lost = {k: v for k, v in sorted(counts.items()) if k != "ok"}
    return {"total": total, "ok": counts.get("ok", 0), "lost": lost,
            "participation_rate": (counts.get("ok", 0) / total) if total else None}


def _summary(sc: Scenario, run_id: str, rounds: list[Any], spec: ModelSpec, t0: float,
             executor: Any) -> dict[str, Any]:
    accs = [r.accuracy for r in rounds]
    last = rounds[-1] if rounds else None
    return {
        "run_id": run_id,
        "scenario": sc.name,
        "algorithm": sc.algorithm.name,
        "seed": sc.seed,
        "rounds": len(rounds),
        "clients": sc.n_clients,
        "model": {"name": spec.name, "quantized_layers": spec.n_quantized,
                  "params": spec.total_params, "macs_per_sample": spec.macs_per_sample},
        "final_accuracy": last.accuracy if last else None,
        "best_accuracy": max(accs) if accs else None,
        "final_loss": last.loss if last else None,
        "sim_time_s": last.sim_time_s if last else 0.0,
        "energy_j": last.energy_j if last else 0.0,
        "stragglers": sum(r.stragglers for r in rounds),
        "infeasible": sum(r.infeasible for r in rounds),
        "dropouts": sum(r.dropouts for r in rounds),
        "offline": sum(r.offline for r in rounds),
        "battery": sum(r.battery for r in rounds),
        "host": {
            "wall_s": round(time.perf_counter() - t0, 3),
            **_peak_rss_mb(),
            "executor": ("process" if executor.executor == "inline" and executor.workers > 1
                         else executor.executor),
            "workers": executor.workers,
            "threads": executor.threads,
            "argv": sys.argv,
            **_host_info(),
        },
    }
