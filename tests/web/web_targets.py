"""Functions the admin app tests schedule (importable by reference from other processes)."""

from __future__ import annotations

import time


def noop() -> None:
    """Does nothing."""


def fail() -> None:
    """Raises, for a run with a traceback (its message has markup in it)."""
    raise RuntimeError("<script>alert('traceback')</script>")


def slow() -> None:
    """Runs long enough to be cancelled (in a process pool: a thread cannot be stopped)."""
    time.sleep(30)
