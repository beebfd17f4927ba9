"""The run loop: build the parts, open the run folder, drive the engine, publish or suspend.

:func:`run_scenario` is the whole of a run in named steps. Everything that can fail on
user input is resolved by :func:`fedsim.runner.build.build_run` before the folder exists; from
then on a failure either suspends the run (it has a checkpoint: Ctrl-C, a worker error) so
``fedsim run --resume`` continues it byte for byte, or removes everything it wrote.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedsim.config.loader import LoadedScenario
from fedsim.errors import InputError, RunError
from fedsim.records.writer import RunFolder, unique_run_id
from fedsim.runner.adaptive import AdaptiveBudgets
from fedsim.runner.build import RunParts, build_run, steps_for
from fedsim.runner.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from fedsim.runner.plan import plan_rows, write_plan_csv
from fedsim.runner.progress import RoundProgress
from fedsim.runner.summary import client_round_counts, resolved_scenario_dict, run_summary

__all__ = ["RunOutcome", "resolved_scenario_dict", "run_scenario"]


@dataclass
class RunOutcome:
    path: Path
    summary: dict[str, Any]
    rounds: list[Any] = field(default_factory=list)


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
    host_t0 = time.perf_counter()
    parts = build_run(loaded)
    folder, ckpt = _open_folder(parts, output, run_name, resume_dir)
    recorder = RunRecorder(folder, parts.algorithm,
                           RoundProgress(total=parts.scenario.rounds, enabled=progress))
    if ckpt is not None:
        recorder.resume_from(ckpt)
    executor = None
    try:
        if ckpt is None:
            _write_inputs(folder, parts, overrides)
        port, executor = _make_port(parts, recorder, ckpt)
        engine = _make_engine(parts, port, recorder, ckpt)
        sim_t0 = time.perf_counter()
        engine.run()
        recorder.drain()
        summary = run_summary(parts.scenario, folder.run_id, recorder.rounds, parts.spec,
                              host_t0, executor=parts.scenario.execution)
        # host seconds in the engine (simulating, training, writing records) vs building
        summary["host"]["simulate_s"] = round(time.perf_counter() - sim_t0, 3)
        summary["host"]["build_s"] = round(sim_t0 - host_t0, 3)
        summary["stopped_reason"] = engine.stopped_reason
        summary["client_rounds"] = client_round_counts(folder.status_counts)
        summary["excluded_clients"] = [
            {"client_id": p.client.client_id, "group": p.client.group, "reason": p.reason}
            for p in parts.plans if p.excluded]
        folder.write_json("summary.json", summary)
        (folder.path / CHECKPOINT).unlink(missing_ok=True)
        recorder.close_replay_log(remove=True)
        path = folder.commit()
    except InputError:
        if resume_dir is not None:  # never delete a run the user asked to continue
            folder.suspend()
        else:
            folder.abort()
        raise
    except BaseException as exc:  # Ctrl-C, a worker's error, a crash
        _finish_held_round(recorder)
        _stop(folder, recorder.checkpointed, exc, parts)
        raise
    finally:
        recorder.close_replay_log()
        recorder.bar.close()
        if executor is not None:
            executor.shutdown()
    return RunOutcome(path=path, summary=summary, rounds=recorder.rounds)


class RunRecorder:
    """The engine's observer: writes every record and checkpoints after every round.

    The checkpoint holds the engine's own state, so the recorder is told which engine it
    watches once that engine exists (:meth:`watch`).
    """

    def __init__(self, folder: RunFolder, algorithm: Any, bar: RoundProgress) -> None:
        self.folder = folder
        self.algorithm = algorithm
        self.bar = bar
        self.rounds: list[Any] = []
        self.checkpointed = False  # True once a checkpoint exists: the run can be resumed
        self._engine: Any = None
        self.recording: Any = None  # async runs: the port that logs for a replay (resume)
        self.replay: Any = None  # a resumed async run: the port replaying that log
        self._held: tuple[Any, Callable[[Any], None]] | None = None
        self._captured: tuple[int, dict[str, Any]] | None = None
        self._queue: list[tuple[Callable[[Any], None], Any]] = []
        self.on_event: Callable[[Any], None]
        self.on_client: Callable[[Any], None]
        self.on_events: Callable[[Any], None]
        self.on_clients: Callable[[Any], None]
        self._write_through()

    def watch(self, engine: Any) -> None:
        self._engine = engine

    def close_replay_log(self, *, remove: bool = False) -> None:
        """Close an async run's replay log; remove it once the run is complete."""
        if self.recording is not None:
            self.recording.log.close()
            if remove:
                from fedsim.runner.replay import LOG_FILE

                (self.folder.path / LOG_FILE).unlink(missing_ok=True)

    def resume_from(self, ckpt: dict[str, Any]) -> None:
        """Restore the algorithm and the records of the rounds already done."""
        from fedsim.records.reader import read_round_records

        self.algorithm.global_state = dict(ckpt["global_state"])
        self.algorithm.load_server_state(ckpt["server_state"])
        self.rounds = read_round_records(self.folder.path / "rounds.csv")
        self.folder.status_counts = dict(ckpt["status_counts"])
        self.bar.skip(len(self.rounds))
        self.checkpointed = True

    # -- a round whose evaluation is pending (TrainingPort.defer_evaluation) ----------------
    def hold(self, round: int, pending: Any, publish: Callable[[Any], None]) -> None:
        """Keep the round's last records, and every record after them, until ``pending``
        is evaluated (:meth:`drain`). The checkpoint's view of the server and the engine is
        taken now, at the round's end, as it would have been without the wait."""
        self.drain()
        self._captured = (round, self._state_at(round))
        self._held = (pending, publish)
        queue = self._queue = []
        folder = self.folder
        self.on_event = lambda e: queue.append((folder.on_event, e))
        self.on_client = lambda r: queue.append((folder.on_client, r))
        self.on_events = lambda b: queue.append((folder.on_events, b))
        self.on_clients = lambda b: queue.append((folder.on_clients, b))

    def drain(self) -> None:
        """Evaluate the held round, then write its records and everything held after them,
        in the order they came."""
        if self._held is None:
            return
        (pending, publish), self._held = self._held, None
        self._write_through()
        publish(pending.result())
        queue, self._queue = self._queue, []
        for write, item in queue:
            write(item)

    def _write_through(self) -> None:
        self.on_event = self.folder.on_event
        self.on_client = self.folder.on_client
        self.on_events = self.folder.on_events
        self.on_clients = self.folder.on_clients

    def _state_at(self, round: int) -> dict[str, Any]:
        """What a checkpoint after ``round`` holds besides the files' lengths."""
        state = {
            "global_state": dict(self.algorithm.global_state),
            "server_state": self.algorithm.server_state(),
            "engine": self._engine.snapshot(round + 1),
        }
        if self.recording is not None:
            state["replay"] = self.recording.checkpoint_state()
        return state

    def on_round(self, rec: Any) -> None:
        self.drain()  # an earlier round still held comes first
        self.folder.on_round(rec)
        self.rounds.append(rec)
        offsets = self.folder.sync()
        captured, self._captured = self._captured, None
        payload = (captured[1] if captured is not None and captured[0] == rec.round
                   else self._state_at(rec.round))
        payload["offsets"] = offsets
        payload["status_counts"] = dict(self.folder.status_counts)
        save_checkpoint(self.folder.path, payload)
        self.checkpointed = True
        self.bar.update(rec)


def _open_folder(parts: RunParts, output: Path, run_name: str | None,
                 resume_dir: Path | None) -> tuple[RunFolder, dict[str, Any] | None]:
    """A new run folder, or the suspended one of ``resume_dir`` with its last checkpoint."""
    sc = parts.scenario
    if resume_dir is None:
        output.mkdir(parents=True, exist_ok=True)
        method = sc.algorithm.name.rsplit(":", 1)[-1]  # a plug-in's class, not its path
        run_id = unique_run_id(output, run_name or f"{sc.name}-{method}-s{sc.seed}")
        folder = RunFolder(output, run_id, columnar=columnar_records(sc))
        ckpt = None
    else:
        ckpt = load_checkpoint(resume_dir)
        run_id = resume_dir.name[1:-len(".partial")]
        folder = RunFolder(resume_dir.parent, run_id,
                           offsets=ckpt["offsets"] if ckpt else None,
                           columnar=columnar_records(sc))
    folder.layer_params = [(lay.name, lay.params) for lay in parts.spec.quantized_layers]
    return folder, ckpt


def columnar_records(sc: Any) -> bool:
    """Parquet records when asked for, or under ``auto`` when the run may record more
    client-rounds than text files handle well (``AUTO_CLIENT_ROUNDS``)."""
    from fedsim.records.columnar import AUTO_CLIENT_ROUNDS

    choice = sc.execution.events
    if choice != "auto":
        return choice == "parquet"
    per_round = sc.clients_per_round()
    if sc.mode == "async":
        per_round = max(sc.fedbuff.buffer_k, sc.fedbuff.concurrency)
    return sc.rounds * per_round > AUTO_CLIENT_ROUNDS


def _write_inputs(folder: RunFolder, parts: RunParts, overrides: Sequence[str]) -> None:
    """The run's inputs, written once: resolved scenario, client split, budget plan,
    provenance."""
    from fedsim.data.splitfile import split_document

    sc, loaded = parts.scenario, parts.loaded
    folder.write_text("scenario.yaml", yaml.safe_dump(resolved_scenario_dict(sc),
                                                       sort_keys=False))
    if not sc.system_only.enabled:
        doc = split_document(parts.data.parts, parts.data.test_idx, sc.data.dataset)
        folder.write_text("partition.json", json.dumps(doc, separators=(",", ":")) + "\n")
    write_plan_csv(folder.path / "plan.csv", plan_rows(parts.plans))
    from fedsim.runner.inputs import run_fingerprints

    folder.write_json("run.json", {
        "run_id": folder.run_id,
        "source": str(loaded.path.resolve()) if loaded.path else None,
        "overrides": list(overrides),
        "inputs": run_fingerprints(loaded, parts.fleet),  # resume refuses if any of these changed
    })


def _make_port(parts: RunParts, recorder: RunRecorder,
               ckpt: dict[str, Any] | None) -> tuple[Any, Any]:
    """The engine's door to training (real, on an executor) or its system-only stand-in;
    for async runs wrapped to log what a resume replays (``runner.replay``), and replaying
    that log when resuming; wrapped to re-plan battery-adaptive budgets when the fleet has
    any."""
    port, executor = _trainer_port(parts)
    sc = parts.scenario
    ex = sc.execution
    if executor is not None and sc.mode == "sync" and (ex.workers > 1 or ex.executor != "inline"):
        port.defer_evaluation(recorder.drain)  # test round r while workers train round r+1
    if sc.mode == "async":
        from fedsim.runner.replay import LOG_FILE, RecordingPort, ReplayLog, ReplayPort

        saved = ckpt.get("replay") if ckpt is not None else None
        if ckpt is not None and (saved is None or "log_bytes" not in saved):
            raise InputError("this async run's checkpoint has no replay log (written by an "
                             "older fedsim): start the run again", file=parts.loaded.label,
                             key="mode")
        log = ReplayLog.open(recorder.folder.path / LOG_FILE,
                             saved["log_bytes"] if saved else None)
        port = recorder.recording = RecordingPort(port, log)
        if saved is not None:
            port = recorder.replay = ReplayPort(port, saved)
    adaptive = AdaptiveBudgets(port, parts.planner, parts.plans,
                               sc.selection.deadline_s if sc.mode == "sync" else None)
    return (adaptive if adaptive.adapting else port), executor


def _trainer_port(parts: RunParts) -> tuple[Any, Any]:
    if parts.synthetic is not None:
        return parts.synthetic, None
    from fedsim.execution.executors import make_executor
    from fedsim.runner.ports import TrainingPort

    ex = parts.scenario.execution
    executor = make_executor(ex.executor, parts.worker_setup, ex.workers,
                             ray_address=ex.ray_address, train=parts.data.train,
                             batch_clients=ex.batch_clients)
    fb = parts.scenario.fedbuff
    port = TrainingPort(parts.algorithm, executor, parts.data.parts, parts.evaluator,
                        server_lr=fb.server_lr, staleness_fn=fb.staleness)
    return port, executor


def _make_engine(parts: RunParts, port: Any, recorder: RunRecorder,
                 ckpt: dict[str, Any] | None) -> Any:
    """The SimPy engine over the fleet, restored to the checkpoint when resuming."""
    from fedsim.engine.core import Engine, EngineConfig

    sc, sel, a = parts.scenario, parts.scenario.selection, parts.scenario.algorithm
    replaying = ckpt is not None and recorder.replay is not None
    start = {} if ckpt is None or replaying else {
        "start_round": ckpt["engine"]["next_round"], "start_time_s": ckpt["engine"]["now"],
        "start_energy_j": ckpt["engine"]["fleet_energy_j"]}
    observer: Any = recorder
    if replaying:  # async: the engine runs again from the start against the log
        from fedsim.runner.replay import ReplayGate

        observer = ReplayGate(recorder, recorder.replay, ckpt["engine"]["next_round"] - 1)
    engine = Engine(
        EngineConfig(seed=sc.seed, rounds=sc.rounds, per_round=sc.clients_per_round(),
                     epochs=a.local_epochs, deadline_s=sel.deadline_s, mode=sc.mode,
                     over_commit=sel.over_commit, policy=sel.policy,
                     buffer_k=sc.fedbuff.buffer_k, concurrency=sc.fedbuff.concurrency,
                     wait_s=sel.wait_s, max_wait_s=sel.max_wait_s,
                     vectorised=(sc.system_only.enabled and sc.system_only.vectorised
                                 and not isinstance(port, AdaptiveBudgets))),
        parts.clients, port, parts.cost, observer,
        steps_for=steps_for(sc),
        availability=parts.availability, dynamics=parts.dynamics, **start,
    )
    recorder.watch(engine)
    if isinstance(port, AdaptiveBudgets):
        port.watch(engine)
    if ckpt is not None and not replaying:
        engine.restore(ckpt["engine"])
    return engine


#: errno values of a full disk or quota (the run can continue once space is back)
_DISK_FULL = {28, 122, 27}  # ENOSPC, EDQUOT, EFBIG


def _finish_held_round(recorder: RunRecorder) -> None:
    """A round whose test was still pending is finished work: test it, record it and
    checkpoint it before the run stops, so it is not trained again on ``--resume``
    (best effort: a failure here leaves the previous checkpoint, which is consistent)."""
    with contextlib.suppress(BaseException):  # already stopping for another reason
        recorder.drain()


def _stop(folder: RunFolder, checkpointed: bool, exc: BaseException, parts: RunParts) -> None:
    """Keep a checkpointed run for ``--resume`` (and say so for Ctrl-C or a run error);
    remove a run that has nothing to resume from."""
    if not checkpointed:
        folder.abort()
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise RunError(f"{exc.strerror or 'the disk is full'} while writing "
                           f"{exc.filename or folder.path} before the first round finished; "
                           "nothing was kept: free some space and run again") from exc
        return
    folder.suspend()
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        where = exc.filename or folder.path
        raise RunError(
            f"{exc.strerror or 'the disk is full'} while writing {where}; the run is "
            f"checkpointed (the last finished round is safe): free some space, then continue "
            f"it with `fedsim run --resume {folder.path}`") from exc
    if isinstance(exc, KeyboardInterrupt | RunError):
        what = type(exc).__name__ if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise RunError(f"{what}; the run is checkpointed: continue it with "
                       f"`fedsim run --resume {folder.path}`") from exc
