"""What every figure shares: the report's rc settings, a blank figure, small axis helpers,
and :class:`Series` (one run, or a seed group, drawn as one curve or bar)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from fedsim.reporting import style
from fedsim.reporting.run import Run

F = TypeVar("F", bound=Callable[..., Any])


def styled(fn: F) -> F:
    """Build the figure under the report's rc settings (restored afterwards)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(style.RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(width: float, height: float, **kw: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kw)


def empty(ax: Any, text: str) -> None:
    """Say in the panel why it is empty, rather than draw blank axes a reader could misread."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="#666666", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def pct_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


@dataclass
class Series:
    label: str
    runs: list[Run]
    color: str
    linestyle: str = "-"
    marker: str = "o"
    extra: dict[str, Any] = field(default_factory=dict)
