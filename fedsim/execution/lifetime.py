"""Child processes that die with their parent (torch-free: sweeps use it too)."""

from __future__ import annotations


def die_with_parent() -> None:  # pragma: no cover - runs in a child process
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``).

    Why: a pool worker blocks on its task queue, and it holds that queue's write end
    itself, so a SIGKILLed run would leave its workers waiting forever; a sweep's child
    runs likewise. Elsewhere (no prctl) this does nothing."""
    import os
    import signal

    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
