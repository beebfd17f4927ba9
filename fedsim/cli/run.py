"""``fedsim run``, ``fedsim validate`` and ``fedsim partition export``: scenarios in, runs out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fedsim.cli.errors import handle_errors
from fedsim.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def _scenario_arg(fn: F, required: bool = True) -> F:
    fn = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override any scenario key, e.g. --set rounds=3 --set data.partition.alpha=0.1",
    )(fn)
    return click.argument(
        "scenario_file", type=click.Path(dir_okay=False, path_type=Path), metavar="SCENARIO",
        required=required,
    )(fn)


def _optional_scenario_arg(fn: F) -> F:
    return _scenario_arg(fn, required=False)


def _load(scenario_file: Path, overrides: tuple[str, ...], extra: list[str]) -> Any:
    from fedsim.config.loader import load_scenario

    loaded = load_scenario(scenario_file, [*overrides, *extra])
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    return loaded


@click.command()
@_optional_scenario_arg
@click.option("--resume", "resume", type=click.Path(path_type=Path), default=None,
              metavar="RUN_DIR", help="Continue an interrupted run from its last checkpoint.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True, help="Parent folder of run folders.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Processes training clients in parallel (results do not change).")
@click.option("--executor", type=click.Choice(["inline", "process", "ray"]), default=None,
              help="Where training runs (default from the scenario).")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Torch threads per client task (fixed for determinism).")
@click.option("--name", default=None, help="Run folder name (default: scenario-method-seed).")
@click.option("--seeds", "seeds_text", default=None, metavar="SPEC",
              help="Run once per seed (1-5 or 1,4,9) into one parent folder, with a summary.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only on a terminal).")
@click.option("--system-only", is_flag=True,
              help="No training: engine, cost model, network and selection only (10^5 clients).")
@click.option("--report", "make_report", is_flag=True,
              help="Write the HTML/Markdown report into RUN_DIR/report/ at the end.")
@click.option("--events", "events", type=click.Choice(["auto", "jsonl", "parquet"]),
              default=None, help="Record layout: text files, Parquet parts, or Parquet above "
              "~200k client-rounds (auto; the scenario's execution.events).")
@handle_errors
def run(scenario_file: Path | None, overrides: tuple[str, ...], resume: Path | None,
        output: Path, workers: int | None, executor: str | None, threads: int | None,
        name: str | None, seeds_text: str | None, progress: bool | None,
        make_report: bool, system_only: bool, events: str | None) -> None:
    """Run SCENARIO (a YAML file) and write a run folder under --output.

    With --resume RUN_DIR, continue an interrupted run (SCENARIO optional: the run remembers
    its file and overrides); the result is byte-identical to an uninterrupted run.
    """
    extra = []
    if workers is not None:
        extra.append(f"execution.workers={workers}")
    if executor is not None:
        extra.append(f"execution.executor={executor}")
    if threads is not None:
        extra.append(f"execution.threads={threads}")
    if system_only:
        extra.append("system_only.enabled=true")
    if events is not None:
        extra.append(f"execution.events={events}")
    from fedsim.runner.simulation import run_scenario

    if resume is not None:
        from fedsim.runner.resume import AlreadyFinished, prepare

        try:
            loaded, partial, all_overrides = prepare(resume, scenario_file,
                                                     [*overrides, *extra])
        except AlreadyFinished as done:
            click.echo(f"run already finished: {done.path} (nothing to resume)")
            return
        outcome = run_scenario(loaded, output=partial.parent, progress=progress,
                               resume_dir=partial, overrides=all_overrides)
    else:
        if scenario_file is None:
            raise click.UsageError("give a SCENARIO file (or --resume RUN_DIR)")
        loaded = _load(scenario_file, overrides, extra)
        seeds = loaded.scenario.seeds
        if seeds_text is not None:
            from fedsim.runner.seeds import parse_seeds

            seeds = parse_seeds(seeds_text)
        if seeds:
            _run_seeds(loaded, scenario_file, [*overrides, *extra], seeds, output, name,
                       progress)
            return
        outcome = run_scenario(loaded, output=output, run_name=name, progress=progress,
                               overrides=[*overrides, *extra])
    s = outcome.summary
    acc = s["final_accuracy"]
    if acc is None:
        click.echo(f"run {s['run_id']}: no rounds completed")
    else:
        quality = ("system-only (no training)" if acc != acc
                   else f"final accuracy {acc:.4f}, best {s['best_accuracy']:.4f}")
        click.echo(f"run {s['run_id']}: {s['rounds']} rounds, {quality}, simulated "
                   f"{s['sim_time_s']:.1f} s, fleet energy {s['energy_j']:.1f} J, host "
                   f"{s['host']['wall_s']:.1f} s")
    excluded = s.get("excluded_clients") or []
    if excluded:
        first = excluded[0]
        click.echo(f"excluded up front: {len(excluded)} client(s) that fit no precision, e.g. "
                   f"client {first['client_id']} ({first['group']}): {first['reason']} "
                   "(all in summary.json and plan.csv; `fedsim plan` explains)")
    click.echo(f"results: {outcome.path}")
    if make_report:
        from fedsim.reporting import write_report

        click.echo(f"report: {write_report(outcome.path)}")


def _run_seeds(loaded: Any, scenario_file: Path, overrides: list[str], seeds: list[int],
               output: Path, name: str | None, progress: bool | None) -> None:
    from fedsim.runner.seeds import run_seeds

    sc = loaded.scenario
    parent = output / (name or f"{sc.name}-{sc.algorithm.name}-seeds")
    paths = run_seeds(scenario_file, overrides, seeds, parent,
                      parallel=sc.execution.workers, progress=progress)
    import json

    doc = json.loads((parent / "seeds_summary.json").read_text())
    acc = doc["final"]["final_accuracy"]
    if acc["mean"] != acc["mean"]:  # NaN: no seed recorded an accuracy
        click.echo(f"{len(paths)} seeds: system-only (no training), see seeds_summary.csv")
    else:
        click.echo(f"{len(paths)} seeds: final accuracy {acc['mean']:.4f} ± {acc['std']:.4f} "
                   f"(min {acc['min']:.4f}, max {acc['max']:.4f})")
    click.echo(f"results: {parent}")


@click.group()
def partition() -> None:
    """Client splits: export the split a run used, to reuse it elsewhere."""


@partition.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Where to write the split JSON (default: stdout).")
@handle_errors
def partition_export(run_dir: Path, output: Path | None) -> None:
    """Write the client split RUN_DIR used (train_indices_per_client, test_indices)."""
    src = run_dir / "partition.json"
    if not src.is_file():
        raise InputError("not a run folder with a partition.json", file=run_dir)
    text = src.read_text(encoding="utf-8")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@click.command()
@_scenario_arg
@handle_errors
def validate(scenario_file: Path, overrides: tuple[str, ...]) -> None:
    """Check SCENARIO (schema, profiles, dataset files) without running it."""
    loaded = _load(scenario_file, overrides, [])
    from fedsim.runner.fleet import resolve_fleet

    fleet = resolve_fleet(loaded)
    sc = loaded.scenario
    from fedsim.data import check_dataset_available

    try:
        check_dataset_available(sc.data.dataset, root=sc.data.root)
    except InputError as exc:
        raise InputError(exc.detail, file=loaded.label, key=exc.key or "data.root") from None
    except OSError as exc:
        raise InputError(f"cannot read the dataset folder: {exc.strerror}",
                         file=loaded.label, key="data.root") from None
    if sc.data.normalize is not None:  # one statistic per channel of the dataset
        from fedsim.data import dataset_info
        from fedsim.runner.build import data_options

        try:
            dataset_info(sc.data.dataset, data_options(sc))
        except InputError as exc:
            raise InputError(exc.detail, file=loaded.label, key=exc.key) from None
    from fedsim.runner.fleet import build_dynamics

    build_dynamics(loaded, fleet)  # trace files, battery capacities
    from fedsim.runner.build import check_batching

    check_batching(loaded)  # execution.batch_clients: the method and the model allow it
    if sc.data.partition.kind == "file" and not sc.system_only.enabled:
        from fedsim.runner.build import load_run_data

        load_run_data(loaded)  # the split file against the dataset it indexes
    devices = sorted({c.profile.name for c in fleet})
    click.echo(
        f"ok: {scenario_file}: {sc.n_clients} clients on {len(devices)} device profiles "
        f"({', '.join(devices)}), {sc.rounds} rounds of {sc.algorithm.name} on "
        f"{sc.data.dataset}/{sc.model.name}"
    )




@click.command()
@_scenario_arg
@click.option("--clients", "per_client", is_flag=True,
              help="One table per client (links and batteries differ), not per group.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table as CSV (plan.csv columns).")
@handle_errors
def plan(scenario_file: Path, overrides: tuple[str, ...], per_client: bool,
         output: Path | None) -> None:
    """Which devices can join SCENARIO, at what precision, and why: without training.

    For every budget the method can give (1-8 bits, or float) the time, energy and memory
    of one round, the constraint that binds (memory, deadline, energy, battery) and the
    budget each client gets; `budget_bits: auto` groups take the largest that fits.
    """
    from fedsim.runner.build import build_run
    from fedsim.runner.plan import plan_rows, render_plan, write_plan_csv

    parts = build_run(_load(scenario_file, overrides, []))
    plans = parts.plans
    if per_client:  # price every client's every budget, fixed ones too
        plans = [parts.planner.plan(p.client, p.limits) for p in plans]
    click.echo(render_plan(plans, per_client=per_client))
    if output is not None:
        try:
            write_plan_csv(output, plan_rows(plans, per_client=per_client))
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", file=output) from None
        click.echo(f"wrote {output}")
