"""``fedsim sweep``: a grid of overrides x seeds, in parallel, resumable, with one page."""

from __future__ import annotations

from pathlib import Path

import click

from fedsim.cli.errors import handle_errors


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path),
                metavar="SCENARIO")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2",
              help="One axis of the grid, e.g. --grid algorithm.name=fedmpq,fedavg "
                   "--grid fleet.0.budget_bits=2,4 (the cross product is run).")
@click.option("--seeds", "seeds_text", default=None, metavar="SPEC",
              help="Seeds per cell, e.g. 1-3 or 1,4,9 (default: the scenario's seed).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key in every cell.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Runs at a time (each run is its own process, byte-identical to a "
                   "single run).")
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process",
              show_default=True, help="Run each run as a local process, or as a Ray task.")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="Ray cluster to join (default: FEDSIM_RAY_ADDRESS, else a local instance).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True, help="Parent of the sweep folder.")
@click.option("--name", default=None, help="Sweep folder name (default: <scenario>-sweep).")
@handle_errors
def sweep(scenario_file: Path, grid: tuple[str, ...], seeds_text: str | None,
          overrides: tuple[str, ...], workers: int, executor: str, ray_address: str | None,
          output: Path, name: str | None) -> None:
    """Run SCENARIO over a grid of settings x seeds and compare them on one page.

    Every cell is validated before any run starts. Run the same command again after an
    interruption: finished runs are kept, the others run again. The folder holds one run
    folder per cell and seed, sweep.csv (mean ± std per cell), sweep.json and sweep.html
    (accuracy vs energy and vs simulated time with the Pareto front). `fedsim compare`
    accepts the folder too.
    """
    from fedsim.config.loader import load_scenario
    from fedsim.runner.seeds import parse_seeds
    from fedsim.sweep.sweep import run_sweep

    if seeds_text is not None:
        seeds = parse_seeds(seeds_text)
    else:
        seeds = [load_scenario(scenario_file, list(overrides)).scenario.seed]
    folder = output / (name or f"{scenario_file.stem}-sweep")
    page = run_sweep(scenario_file, grid, seeds, overrides, folder, workers=workers,
                     executor=executor, ray_address=ray_address, echo=click.echo)
    click.echo(f"sweep page: {page}")
    click.echo(f"table: {folder / 'sweep.csv'}")
