"""An application's scheduler for the ``tickwork`` command: ``tickwork run
cli_app:scheduler`` runs it in the foreground until Ctrl-C or SIGTERM (like ``celery
beat``), and ``--app cli_app:scheduler`` lets the other commands look at it.

Run as a script, it does both with the real command and checks the result."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tickwork.schedulers import BlockingScheduler
from tickwork.stores import FileStore

HERE = Path(__file__).resolve().parent
STORE = Path(tempfile.gettempdir()) / "tickwork-cli-example"

scheduler = BlockingScheduler(stores={"default": FileStore(STORE)})


@scheduler.add_task(trigger="interval", seconds=0.5, id="heartbeat", replace_existing=True)
def heartbeat() -> None:
    print("beat", flush=True)


@scheduler.add_task(trigger="shutdown", id="goodbye", replace_existing=True)
def goodbye() -> None:
    print("goodbye", flush=True)


def tickwork(*args: str, stderr: int | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tickwork", *args]
    return subprocess.Popen(command, cwd=HERE, stdout=subprocess.PIPE, stderr=stderr, text=True)


def main() -> None:
    shutil.rmtree(STORE, ignore_errors=True)  # (a fresh store for each run of the example)
    # Inspect: the scheduler is started paused in the command's process; nothing runs.
    listing = tickwork("tasks", "list", "--app", "cli_app:scheduler", "--json")
    out, _ = listing.communicate(timeout=30)
    assert sorted(task["id"] for task in json.loads(out)) == ["goodbye", "heartbeat"]

    # Run it in the foreground, then stop it the way a service manager does.
    worker = tickwork("run", "cli_app:scheduler", stderr=subprocess.DEVNULL)
    assert worker.stdout is not None
    assert worker.stdout.readline() == "beat\n"
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0  # an ordinary shutdown: the shutdown task ran
    assert out.splitlines()[-1] == "goodbye"
    print("ok")


if __name__ == "__main__":
    main()
