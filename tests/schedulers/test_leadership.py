"""Leadership on the scheduler (tickwork/schedulers/_leadership.py): one leader among
schedulers sharing a store, leader-only tasks run there only, LEADERSHIP_CHANGED and a
log line on each change, a term that cannot be renewed ends before another can begin,
and the ``lock_path`` lock as the term of memory and file stores."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tickwork import BackgroundScheduler
from tickwork.events import LEADERSHIP_CHANGED, TASK_EXECUTED, LeadershipEvent
from tickwork.exceptions import UnknownAliasError
from tickwork.schedulers._leadership import MARGIN
from tickwork.stores import MemoryStore, SQLAlchemyStore

LEASE = 0.6


def tick() -> None:
    """A leader-only task's function (importable: the SQL store keeps it by name)."""


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Member:
    """A scheduler on the shared store, with what its listeners saw."""

    def __init__(self, scheduler: BackgroundScheduler) -> None:
        self.scheduler = scheduler
        self.changes: list[LeadershipEvent] = []
        self.runs = 0
        self._lock = threading.Lock()
        scheduler.add_listener(self._changed, LEADERSHIP_CHANGED)
        scheduler.add_listener(self._ran, TASK_EXECUTED)

    def _changed(self, event: Any) -> None:
        self.changes.append(event)

    def _ran(self, event: Any) -> None:
        with self._lock:
            self.runs += 1


@pytest.fixture
def members(tmp_path: Path) -> Iterator[Callable[[], Member]]:
    made: list[Member] = []

    def make() -> Member:
        store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'shared.sqlite'}", lease_time=LEASE)
        member = Member(BackgroundScheduler(stores={"default": store}, timezone="UTC"))
        made.append(member)
        return member

    yield make
    for member in made:
        if member.scheduler.running:
            member.scheduler.shutdown()


def test_one_scheduler_leads_and_runs_the_leader_only_tasks(
    members: Callable[[], Member], caplog: pytest.LogCaptureFixture
) -> None:
    one, two, three = members(), members(), members()
    one.scheduler.add_task(tick, "interval", seconds=0.05, id="lead", leader_only=True)
    with caplog.at_level(logging.INFO, logger="tickwork"):
        for member in (one, two, three):
            member.scheduler.start()
        wait_for(lambda: sum(m.scheduler.is_leader for m in (one, two, three)) == 1)
        leader = next(m for m in (one, two, three) if m.scheduler.is_leader)
        others = [m for m in (one, two, three) if m is not leader]
        wait_for(lambda: leader.runs >= 5)
    assert all(member.runs == 0 for member in others)
    assert [(e.alias, e.leader, e.generation) for e in leader.changes] == [("default", True, 1)]
    assert leader.changes[0].identity == leader.scheduler.identity
    assert all(member.changes == [] for member in others)
    assert f"this scheduler ({leader.scheduler.identity}) is the leader now (generation 1)" in (
        caplog.text
    )


def test_a_leader_that_shuts_down_hands_over(members: Callable[[], Member]) -> None:
    one, two = members(), members()
    one.scheduler.add_task(tick, "interval", seconds=0.05, id="lead", leader_only=True)
    one.scheduler.start()
    wait_for(lambda: one.scheduler.is_leader)
    two.scheduler.start()
    wait_for(lambda: one.runs >= 2)
    assert not two.scheduler.is_leader
    one.scheduler.shutdown()
    assert [(e.leader, e.generation) for e in one.changes] == [(True, 1), (False, 1)]
    started = time.monotonic()
    wait_for(lambda: two.scheduler.is_leader)
    # It resigned: the next attempt (every third of the lease) takes over.
    assert time.monotonic() - started < LEASE / 3 + 0.5
    assert [(e.leader, e.generation) for e in two.changes] == [(True, 2)]
    wait_for(lambda: two.runs >= 2)


def test_a_leader_that_cannot_renew_stops_leading_before_its_term_ends(
    members: Callable[[], Member], caplog: pytest.LogCaptureFixture
) -> None:
    """The store is out of reach for the leader: it must stop acting as leader by
    ``asked + lease * (1 - MARGIN)``, before the store lets another member in."""
    one, two = members(), members()
    one.scheduler.start()
    wait_for(lambda: one.scheduler.is_leader)
    store = one.scheduler._plugins.stores["default"]
    renewed = time.monotonic()

    def unreachable(owner: str, lease: float) -> int | None:
        raise ConnectionError("the database is unreachable from here")

    store.elect = unreachable  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="tickwork"):
        wait_for(lambda: not one.scheduler.is_leader)
    assert time.monotonic() - renewed <= LEASE * (1 - MARGIN) + 0.05
    assert "could not take part in the leader election" in caplog.text
    two.scheduler.start()
    wait_for(lambda: two.scheduler.is_leader)
    assert [(e.leader, e.generation) for e in one.changes] == [(True, 1), (False, 1)]
    assert [(e.leader, e.generation) for e in two.changes] == [(True, 2)]


def test_a_renewal_that_comes_back_too_late_ends_the_leadership(
    members: Callable[[], Member], caplog: pytest.LogCaptureFixture
) -> None:
    """A slow store: the renewal succeeds, but its answer arrives after the term could
    have expired. The leader must not go on acting on it: it resigns, says so, and the
    next member takes over."""
    one, two = members(), members()
    one.scheduler.start()
    wait_for(lambda: one.scheduler.is_leader)
    assert one.scheduler.leader_generation == 1
    store = one.scheduler._plugins.stores["default"]
    real = store.elect
    slow = threading.Event()

    def slow_elect(owner: str, lease: float) -> int | None:
        found = real(owner, lease)
        if not slow.is_set():
            slow.set()
            time.sleep(LEASE)  # the answer is late
        return found

    store.elect = slow_elect  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="tickwork"):
        wait_for(lambda: len(one.changes) == 2)
    assert [(e.leader, e.generation) for e in one.changes] == [(True, 1), (False, 1)]
    assert "came back after the term could have expired" in caplog.text
    assert one.scheduler.leader_generation is None
    two.scheduler.start()
    # It resigned: another member takes the term (a new generation), or it does again.
    wait_for(lambda: one.scheduler.is_leader or two.scheduler.is_leader)
    leader = one if one.scheduler.is_leader else two
    assert leader.scheduler.leader_generation == 2
    info = leader.scheduler.get_scheduler_info()["leadership"]
    assert info == {
        "store": "default",
        "is_leader": True,
        "generation": 2,
        "leader": leader.scheduler.identity,
    }
    other = two if leader is one else one
    assert other.scheduler.get_scheduler_info()["leadership"]["is_leader"] is False
    # Read from the store, another member's term is named too.
    term = other.scheduler.get_leader()
    assert term is not None
    assert (term.owner, term.generation) == (leader.scheduler.identity, 2)


def test_a_scheduler_without_an_electing_store_never_leads() -> None:
    scheduler = BackgroundScheduler(stores={"default": MemoryStore()})
    with scheduler:
        assert scheduler.is_leader is False
        assert scheduler.is_leader_of("default") is False
        assert scheduler._leadership._thread is None  # nothing to keep up


def test_under_lock_path_the_lock_holder_leads(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "tickwork-{store}.lock")
    runs: list[str] = []

    def make(name: str) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(lock_path=lock_path, timezone="UTC")
        scheduler.lock_retry_interval = 0.1
        scheduler.add_task(
            runs.append, "interval", seconds=0.05, args=[name], id="lead", leader_only=True
        )
        return scheduler

    first, second = make("first"), make("second")
    changes: list[tuple[str, bool, int]] = []
    for name, scheduler in (("first", first), ("second", second)):
        scheduler.add_listener(
            lambda event, name=name: changes.append((name, event.leader, event.generation)),
            LEADERSHIP_CHANGED,
        )
    try:
        # The second starts once the first holds the lock: started together, either may
        # take it first (the second did, once, in a full CI run).
        first.start()
        wait_for(lambda: first.is_leader)
        second.start()
        assert not second.is_leader
        wait_for(lambda: len(runs) >= 3)
        assert set(runs) == {"first"}
        first.shutdown()
        wait_for(lambda: second.is_leader)
        assert Path(tmp_path / "tickwork-default.lock.generation").read_text() == "2"
        count = len(runs)
        wait_for(lambda: len(runs) >= count + 3)
        assert set(runs[count:]) == {"second"}
    finally:
        for scheduler in (first, second):
            if scheduler.running:
                scheduler.shutdown()
    assert changes == [
        ("first", True, 1),
        ("first", False, 1),
        ("second", True, 2),
        ("second", False, 2),
    ]


def test_get_leader_without_an_electing_store_and_for_an_unknown_alias() -> None:
    scheduler = BackgroundScheduler()  # a memory store: no terms
    assert scheduler.get_leader() is None
    with pytest.raises(UnknownAliasError, match="nope"):
        scheduler.get_leader("nope")
