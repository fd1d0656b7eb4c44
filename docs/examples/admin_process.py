"""Administering a fleet's store from a process that runs nothing (a deploy script, a
shell, the admin app): it sees the fleet's tasks and runs, and its changes and run
requests reach the fleet through the store."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tickwork.admin import administer
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url


def send_report() -> str:
    return "sent"


def main(url: str) -> None:
    # A member of the fleet (normally another process, on another host).
    worker = BackgroundScheduler(stores={"default": store_from_url(url)}, identity="worker-1")
    worker.add_task(f"{__name__}:send_report", "cron", hour=6, id="report")
    worker.start()

    # The administering process: a scheduler started paused on the same store.
    with administer(url) as admin:
        print([task.id for task in admin.get_tasks()])
        run_id = admin.request_run("report")  # one run now, by whichever member finds it
        while not [r for r in admin.get_runs("report") if r.outcome == "success"]:
            time.sleep(0.1)
        (record,) = admin.get_runs("report")
        print(record.run_id == run_id, record.scheduler)
        admin.pause_task("report")  # the fleet sees it at its next look at the store

    worker.shutdown()
    assert record.scheduler == "worker-1"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(f"sqlite:///{Path(directory) / 'tasks.db'}")
