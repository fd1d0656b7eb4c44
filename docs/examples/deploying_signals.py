"""Deploying: a BackgroundScheduler in a sync program, and SIGTERM.

Run as is, this file starts itself twice as a child process (``serve``), sends the child
SIGTERM while a task is running, and checks what happened: with the handler, the
scheduler shuts down cleanly; without it, the process ends on the spot.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from tickwork import BackgroundScheduler


def export_orders() -> None:
    print("export started", flush=True)
    time.sleep(0.5)
    print("export finished", flush=True)


def close_connections() -> None:
    print("shutdown task ran", flush=True)


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds the main thread: the with block shuts the scheduler down


def serve(handle_sigterm: bool) -> None:
    if handle_sigterm:
        signal.signal(signal.SIGTERM, stop)
    scheduler = BackgroundScheduler()
    scheduler.add_task(export_orders, id="export")  # no trigger: runs once, now
    scheduler.add_task(close_connections, "shutdown", id="close")
    with scheduler:  # leaving it, also by SystemExit or KeyboardInterrupt, calls shutdown()
        while True:
            time.sleep(1)  # the program's own work


def run_child(*args: str) -> tuple[int, list[str]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "serve", *args], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "export started\n"
    # (The export runs on a worker thread while start() may still be returning in the
    # main thread; a signal there would end start(), not the with block's body.)
    time.sleep(0.2)
    child.send_signal(signal.SIGTERM)  # what systemd, Docker or Kubernetes send first
    output, _ = child.communicate(timeout=20)
    return child.returncode, output.splitlines()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(handle_sigterm=sys.argv[2:] != ["--no-handler"])
elif __name__ == "__main__":
    # With the handler: the running export finishes, the shutdown task runs, exit 0.
    assert run_child() == (0, ["export finished", "shutdown task ran"])
    # Without it, SIGTERM's default action ends the process at once: the export is cut
    # off mid-way and the shutdown task never runs.
    assert run_child("--no-handler") == (-signal.SIGTERM, [])
