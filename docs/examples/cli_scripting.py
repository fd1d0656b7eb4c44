"""Scripting the ``tickwork`` command: ``--json`` output to parse, exit statuses to
branch on (0 done, 1 error, 2 bad command line, 3 unknown id, 4 store unreachable, 5/6
``tasks run --wait``: the run failed / had not ended)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url

NOT_FOUND = 3


def tickwork(*args: str) -> tuple[int, Any]:
    """Run ``tickwork ARGS --json``; return its exit status and parsed output."""
    result = subprocess.run(
        [sys.executable, "-m", "tickwork", *args, "--json"], capture_output=True, text=True
    )
    return result.returncode, json.loads(result.stdout) if result.stdout else None


def main(url: str) -> None:
    # A fleet's store with one task in it (written by an application's scheduler).
    seed = BackgroundScheduler(stores={"default": store_from_url(url)})
    seed.add_task("builtins:print", "cron", hour=6, timezone="Europe/Berlin", id="backup")
    seed.start(paused=True)
    seed.shutdown()

    status, tasks = tickwork("tasks", "list", "--store", url)
    assert status == 0
    print([(task["id"], task["next_run_time"]) for task in tasks])

    status, task = tickwork("tasks", "pause", "backup", "--store", url)
    assert (status, task["paused"]) == (0, True)

    status, _ = tickwork("tasks", "pause", "no-such-task", "--store", url)
    assert status == NOT_FOUND

    # Nobody runs this fleet yet: no leader's term, no member seen at work.
    status, fleet = tickwork("fleet", "--store", url)
    assert (status, fleet) == (0, {"leader": None, "members": []})

    status, times = tickwork("cron", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3",
                             "--start", "2027-03-27")  # fmt: skip
    assert [t["time"] for t in times][1] == "2027-03-28T03:00:00+02:00"  # 02:30 is skipped
    assert "daylight saving time starts" in times[1]["offset_change"]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(f"sqlite:///{Path(directory) / 'tasks.db'}")
