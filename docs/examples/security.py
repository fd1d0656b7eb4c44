"""Security: signed records, allowed modules, encrypted arguments, key rotation.

A row another program writes into the table (here: an unsigned record naming
os:system) is set aside and never run; the scheduler's own tasks keep running."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from tickwork import BackgroundScheduler
from tickwork.events import TASK_SET_ASIDE
from tickwork.exceptions import ModuleNotAllowedError

runs: list[str] = []
refused: list[str] = []


def send_digest(team: str) -> None:
    runs.append(team)


def main(directory: Path) -> None:
    url = f"sqlite:///{directory / 'tasks.sqlite'}"
    # In a real program the keys come from a secret store, e.g. secrets.token_bytes(32).
    signing_key, encryption_key = b"s" * 32, b"e" * 32

    scheduler = BackgroundScheduler(
        stores={"default": {"type": "sqlalchemy", "url": url}},
        signing_key=signing_key,  # every record carries an HMAC with this key
        encryption_key=encryption_key,  # records are sealed (pip install 'tickwork[crypto]')
        allowed_modules=["__main__"],  # the modules task functions may come from
    )
    scheduler.add_listener(lambda event: refused.append(event.task_id), TASK_SET_ASIDE)
    scheduler.add_task(send_digest, "interval", seconds=0.1, args=["ops"], id="digest")
    try:
        scheduler.add_task("os:system", "interval", seconds=1, args=["echo pwned"])
    except ModuleNotAllowedError as exc:
        print("refused:", exc)

    with scheduler:
        # Someone with write access to the database plants a task of their own.
        with sqlite3.connect(directory / "tasks.sqlite") as db:
            state = db.execute("SELECT state FROM tickwork_tasks").fetchone()[0]
            assert b"ops" not in state  # the arguments are encrypted at rest
            forged = b'{"format":1,"task":{"id":"forged","fn":"os:system"}}'
            db.execute(
                "INSERT INTO tickwork_tasks (id, next_run_time, state) VALUES (?, ?, ?)",
                ("forged", 0, forged),
            )
        time.sleep(0.5)

    assert runs
    assert refused == ["forged"]
    print("ran", len(runs), "times; set aside:", refused)

    # Rotating the signing key: the old one is still accepted for reading, then
    # resign_tasks() rewrites every task with the new one and the old key can go.
    rotated = BackgroundScheduler(
        stores={"default": {"type": "sqlalchemy", "url": url}},
        signing_key=b"n" * 32,
        old_signing_keys=[signing_key],
        encryption_key=encryption_key,
    )
    rotated.start(paused=True)
    print("re-signed:", rotated.resign_tasks())
    rotated.shutdown()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(Path(directory))
