"""Command-line interface: thin click commands over the library, one module per family
(``run`` / ``validate`` / ``partition`` in :mod:`fedsim.cli.run`, ``profiles``, ``verify``,
``report`` / ``compare``), registered on the ``fedsim`` group here.

Imports stay lazy (torch loads only when a command trains), so `fedsim --help` and
`fedsim validate` answer in well under a second. Every user-input problem exits 2 with one
message naming the file and key; never a traceback.
"""

from __future__ import annotations

import click

from fedsim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fedsim")
def main() -> None:
    """fedsim: hardware-aware federated-learning simulator (FedMPQ and baselines).

    Simulated time, energy and memory come from hardware profiles driven by per-layer
    bit-widths; training is real PyTorch.
    """


def _register() -> None:
    from fedsim.cli.export import export
    from fedsim.cli.profiles import profiles
    from fedsim.cli.report import compare, report
    from fedsim.cli.run import partition, plan, run, validate
    from fedsim.cli.sweep import sweep
    from fedsim.cli.verify import verify

    main.add_command(run)
    main.add_command(validate)
    main.add_command(partition)
    main.add_command(plan)
    main.add_command(sweep)
    main.add_command(profiles)
    main.add_command(verify)
    main.add_command(report)
    main.add_command(compare)
    main.add_command(export)


_register()

