"""What the fleet tests of run history, retries and cancelling share: named members
(``history_worker.py`` processes) on a fresh shared store, and reading the fleet's run
log afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import servers
from fleet_support import HERE, ROOT, Fleet, _read_line

from tickwork.runs import RunRecord
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import BaseStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

WORKER = HERE / "history_worker.py"
#: Short, so the survivors take the killed member's run over ~2 s after the kill (its
#: record is renewed every third of this, so it expires 1.3 to 2 s after the kill).
LEASE = 2.0


@contextlib.contextmanager
def shared_store(backend: str) -> Iterator[tuple[str, str, BaseStore]]:
    """(worker kind, location, a store object on it) on a fresh database / prefix."""
    if backend == "postgresql":
        with servers.temporary_database("postgresql") as url:
            yield "sql", url, SQLAlchemyStore(url)
    else:
        url = servers.redis_url()
        with servers.redis_prefix() as prefix:
            yield "redis", f"{url}#{prefix}", RedisStore(url, prefix=prefix)


def start_members(running: Fleet, identities: tuple[str, ...]) -> dict[int, str]:
    """Start one ``history_worker.py`` per identity, registered in ``running`` (so its
    stop, kill, records and errors cover them); return pid -> identity once all are
    ready. (Fleet.start runs fleet_worker.py, which takes no identity.)"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    started: dict[int, str] = {}
    for index, identity in enumerate(identities):
        out = running.directory / f"worker-{index}.log"
        with (running.directory / f"{out.stem}.err").open("w") as errors:
            process = subprocess.Popen(
                [
                    *(sys.executable, str(WORKER), str(out), running.kind, running.location),
                    *(identity, "--lease", str(LEASE)),
                ],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=env,
            )
        running.processes[process.pid] = process
        started[process.pid] = identity
    for pid, identity in started.items():
        stdout = running.processes[pid].stdout
        assert stdout is not None
        line = _read_line(stdout, timeout=30)
        assert line.startswith("ready"), f"{identity} did not start: {line!r}"
    return started


def read_run_log(store: BaseStore) -> list[RunRecord]:
    """Every record of the store, read the way an application reads them: get_runs()
    of a scheduler that shares the store (paused: it runs and takes over nothing)."""
    reader = BackgroundScheduler(stores={"default": store}, identity="reader", timezone="UTC")
    reader.start(paused=True)
    try:
        return reader.get_runs(limit=10_000)
    finally:
        reader.shutdown()
