"""Fixed-delay triggers and the ``cooldown`` option on every store, and in a fleet of two
schedulers sharing one store (tickwork/schedulers/_spacing.py, tickwork/triggers/delay.py).

Every test runs real time: the next run must start ``spacing`` seconds after the previous
one *ended*, never sooner (on any member of a fleet), and no due time that falls while a
run is in progress is reported as a skipped run."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from spacing_funcs import gaps, runs_of
from storetest_support import StoreMaker

from tickwork.events import ALL_EVENTS, TASK_ERROR, TASK_MAX_INSTANCES, TASK_MISSED
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import BaseStore
from tickwork.triggers import DelayTrigger

#: Measured ends are taken inside the task, a little before the scheduler sees them; a
#: gap shorter than the spacing by more than this is a bug.
EPSILON = 0.005
#: How late a run may start past its spacing on a loaded test machine.
SLACK = 1.5


@pytest.fixture
def schedulers() -> Iterator[Callable[..., BackgroundScheduler]]:
    made: list[BackgroundScheduler] = []

    def make(store: BaseStore, **options: Any) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(stores={"default": store}, timezone="UTC", **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def wait_runs(key: str, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(runs_of(key)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{key}: {len(runs_of(key))} run(s) of {count} in {timeout} s")
        time.sleep(0.01)


def check_spaced(key: str, spacing: float) -> None:
    found = gaps(key)
    assert found, "no two runs to compare"
    assert min(found) >= spacing - EPSILON, found
    assert max(found) <= spacing + SLACK, found


@pytest.mark.parametrize("fail", [False, True], ids=["success", "error"])
def test_delay_counts_from_the_end_of_each_run(
    make_store: StoreMaker, schedulers: Callable[..., BackgroundScheduler], fail: bool
) -> None:
    key = f"delay-{uuid.uuid4().hex[:6]}"
    events: list[Any] = []
    scheduler = schedulers(make_store(start=False))
    scheduler.add_listener(events.append, ALL_EVENTS)
    # Runs take longer than the delay: a fixed rate would overlap or skip; a fixed
    # delay runs 0.4 s after each end.
    scheduler.add_task(
        "spacing_funcs:timed_run", "delay", seconds=0.4, args=[key, 0.5, fail], id=key
    )
    scheduler.start()
    wait_runs(key, 3)
    scheduler.shutdown()
    check_spaced(key, 0.4)
    assert not [e for e in events if e.code in (TASK_MAX_INSTANCES, TASK_MISSED)]
    assert len([e for e in events if e.code == TASK_ERROR]) == (len(runs_of(key)) if fail else 0)


def test_cooldown_postpones_the_fire_times_of_a_faster_trigger(
    make_store: StoreMaker, schedulers: Callable[..., BackgroundScheduler]
) -> None:
    key = f"cooldown-{uuid.uuid4().hex[:6]}"
    events: list[Any] = []
    scheduler = schedulers(make_store(start=False))
    scheduler.add_listener(events.append, ALL_EVENTS)
    # Every 0.1 s, but never sooner than 0.6 s after a run ended: the fire times in
    # between (during the 0.3 s runs too) are postponed, not reported skipped.
    task = scheduler.add_task(
        "spacing_funcs:timed_run",
        "interval",
        seconds=0.1,
        args=[key, 0.3],
        id=key,
        cooldown=0.6,
        mistrigger_grace_time=None,
    )
    assert task.cooldown == 0.6
    scheduler.start()
    wait_runs(key, 3)
    scheduler.shutdown()
    check_spaced(key, 0.6)
    assert not [e for e in events if e.code in (TASK_MAX_INSTANCES, TASK_MISSED)]


def test_delay_and_cooldown_survive_a_restart(make_persistent_store: StoreMaker) -> None:
    store = make_persistent_store(start=False)
    first = BackgroundScheduler(stores={"default": store}, timezone="UTC")
    first.add_task("spacing_funcs:timed_run", "delay", minutes=5, args=["x", 0], id="d")
    first.add_task(
        "spacing_funcs:timed_run", "interval", hours=1, args=["y", 0], id="c", cooldown=90
    )
    with first:
        pass
    second = BackgroundScheduler(stores={"default": make_persistent_store(start=False)})
    with second:
        delay_task, cooldown_task = second.get_task("d"), second.get_task("c")
    assert delay_task is not None
    assert cooldown_task is not None
    assert delay_task.trigger == DelayTrigger(minutes=5, timezone="UTC")
    assert delay_task.trigger.spacing == 300.0
    assert cooldown_task.cooldown == 90.0
    assert delay_task.cooldown is None


@pytest.mark.parametrize("how", ["delay", "cooldown"])
def test_two_members_keep_the_spacing_between_each_others_runs(
    make_shared_store: StoreMaker, schedulers: Callable[..., BackgroundScheduler], how: str
) -> None:
    """Two schedulers on one shared store: whichever runs the task, the other never
    starts the next run sooner than the spacing after the previous run ended."""
    key = f"fleet-{how}-{uuid.uuid4().hex[:6]}"
    events: list[Any] = []
    members = [
        schedulers(make_shared_store(start=False, lease_time=3.0), identity=f"m{i}")
        for i in range(2)
    ]
    for member in members:
        member.add_listener(events.append, ALL_EVENTS)
    options: dict[str, Any] = (
        {"trigger": "delay", "seconds": 0.5}
        if how == "delay"
        else {"trigger": "interval", "seconds": 0.1, "cooldown": 0.5}
    )
    members[0].add_task(
        "spacing_funcs:timed_run",
        args=[key, 0.2],
        id=key,
        mistrigger_grace_time=None,
        **options,
    )
    for member in members:
        member.start()
    wait_runs(key, 6, timeout=30)
    for member in members:
        member.shutdown()
    check_spaced(key, 0.5)
    assert not [e for e in events if e.code in (TASK_MAX_INSTANCES, TASK_MISSED)]


def test_a_task_context_reaches_a_stored_task_and_nothing_of_it_is_stored(
    make_store: StoreMaker, schedulers: Callable[..., BackgroundScheduler]
) -> None:
    from spacing_funcs import contexts

    key = f"ctx-{uuid.uuid4().hex[:6]}"
    pool = object()  # not serialisable by either serializer: it must never be stored
    scheduler = schedulers(make_store(start=False), resources={"db": pool})
    task = scheduler.add_task("spacing_funcs:with_context", args=[key], id=key)
    assert task.args == (key,)
    assert "ctx" not in task.kwargs
    scheduler.start()
    deadline = time.monotonic() + 10
    while not [c for c in contexts if c[0] == key] and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.shutdown()
    [(_, db, task_id, attempt, run_id)] = [c for c in contexts if c[0] == key]
    assert db is pool
    assert task_id == key
    assert attempt == 1
    assert run_id == scheduler.get_runs(key)[0].run_id
