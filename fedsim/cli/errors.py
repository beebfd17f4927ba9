"""Error handling shared by every command: fedsim's own errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from fedsim.errors import InputError, RunError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn fedsim's own errors into exit codes: 2 for bad input, 1 for a failed run."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            _fail(str(exc), 2)
        except RunError as exc:
            _fail(str(exc), 1)
        except BrokenPipeError:  # `fedsim ... | head`: the reader left; that is not an error
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:  # a path the user named: too long, unreadable, not a folder...
            name = str(exc.filename)[:200] if exc.filename else "a file"
            _fail(f"{name}: {exc.strerror or exc}", 2)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was written", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
