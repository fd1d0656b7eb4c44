"""Leader-only tasks: grelmicro's leader election, as a tickwork program.

In grelmicro a ``LeaderElection`` runs as a task of its own and an interval task takes
``sync=leader`` to run on the leader only. In tickwork the store the members share
elects the leader, and the task says ``leader_only=True``. Here two members (in one
process, for the example; normally two processes or hosts) share an SQLite file.
Run it: ``python docs/examples/leadership.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tickwork import BackgroundScheduler
from tickwork.events import LEADERSHIP_CHANGED, LeadershipEvent
from tickwork.exceptions import NoElectionError
from tickwork.stores import MemoryStore, SQLAlchemyStore

cleanups: list[float] = []


def cleanup() -> None:
    """Work that must happen once for the whole fleet, on one member at a time."""
    cleanups.append(time.monotonic())


def member(url: str) -> BackgroundScheduler:
    # lease_time: how long a leader's term lasts unrenewed (default 10 s); a member
    # takes over at most 4/3 of it after the leader died.
    store = SQLAlchemyStore(url, lease_time=1.0)
    scheduler = BackgroundScheduler(stores={"default": store}, timezone="UTC")
    scheduler.add_task(
        cleanup,
        "interval",
        seconds=0.1,
        id="cleanup",
        leader_only=True,  # runs on the leader only
        replace_existing=True,  # every member adds it; the store keeps one
    )
    return scheduler


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'fleet.sqlite'}"
        first, second = member(url), member(url)
        changes: list[tuple[str, bool, int]] = []

        def note(event: LeadershipEvent) -> None:
            changes.append((event.identity, event.leader, event.generation))

        for scheduler in (first, second):
            scheduler.add_listener(note, LEADERSHIP_CHANGED)
        first.start()
        wait_until(lambda: first.is_leader)  # (the first to ask leads)
        second.start()
        wait_until(lambda: len(cleanups) >= 3)
        assert first.is_leader
        assert not second.is_leader

        first.shutdown()  # the leader leaves: it resigns, the other takes over
        wait_until(lambda: second.is_leader)
        count = len(cleanups)
        wait_until(lambda: len(cleanups) >= count + 3)  # now on the new leader
        second.shutdown()
        assert changes == [
            (first.identity, True, 1),
            (first.identity, False, 1),
            (second.identity, True, 2),
            (second.identity, False, 2),
        ]

    # A store of one process's own has no fleet to lead: refused where it is said.
    alone = BackgroundScheduler(stores={"default": MemoryStore()})
    refused = None
    try:
        alone.add_task(cleanup, "interval", seconds=60, leader_only=True)
    except NoElectionError as error:
        refused = str(error)
    assert refused is not None
    assert "cannot elect a leader" in refused


if __name__ == "__main__":
    main()
    print("ok: one leader at a time, and a hand-over")
