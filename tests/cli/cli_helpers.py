"""Running the real ``tickwork`` command in a subprocess, and the task functions the
tests' stores refer to (importable by the command: it runs with this directory as its
working directory, which it puts first on the import path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Calls of :func:`record_call` in this process (the worker schedulers run here).
CALLS: list[str] = []


def record_call(tag: str) -> None:
    CALLS.append(tag)


def fail(tag: str) -> None:
    raise ValueError(f"failed on purpose ({tag})")


class Result:
    """A finished command: its exit status and output."""

    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def error_line(self) -> str:
        """The one line the command prints on stderr when it fails (other stderr lines
        are log lines of the administering scheduler, prefixed ``tickwork: LEVEL``)."""
        lines = [line for line in self.err.splitlines() if line.startswith("tickwork: error:")]
        assert len(lines) == 1, self.err
        return lines[0]

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def tickwork(*args: str, cwd: Path = HERE, timeout: float = 60) -> Result:
    """``python -m tickwork ARGS`` in ``cwd``."""
    completed = subprocess.run(
        [sys.executable, "-m", "tickwork", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Result(completed)


def wait_for(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


async def sleep_long() -> None:
    import asyncio

    await asyncio.sleep(120)
