"""A program that adds its tasks again at every start, with ``replace_existing=True`` (the
documented pattern), drops no run that fell due while it was down, and loses no change.

Each test runs a program on a persistent store (SQLite file, file store, PostgreSQL,
Redis), stops it, moves the clock past runs nobody ran, and starts it again:

* the same trigger: the stored next run time stays, so the runs that fell due while the
  program was down run (coalesced, within the grace time or with ``None``) or are
  reported ``TASK_MISSED``; they used to be dropped without a trace;
* a changed trigger: the new schedule applies from now, and the log names the runs of
  the old one that are not run;
* ``replace_existing="keep"``: the stored task stays as it is;
* the decorator form with an id replaces (asyncz does), so it works across restarts.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servers

from tickwork.clock import FakeClock
from tickwork.events import TASK_ADDED, TASK_EXECUTED, TASK_MISSED
from tickwork.exceptions import ConflictIdError
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import BaseStore
from tickwork.stores.file import FileStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.triggers import CronTrigger
from tickwork.utils import ref_to_obj

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def refresh(label: str = "") -> None:
    """The task body (module level: persistent stores keep it by reference)."""


def report() -> None:
    """The decorated task body."""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with servers.temporary_database("postgresql") as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("file", id="file"),
        pytest.param(
            "postgresql", id="postgresql", marks=pytest.mark.external_service("postgresql")
        ),
        pytest.param("redis", id="redis", marks=pytest.mark.external_service("redis")),
    ]
)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], BaseStore]]:
    """Makes store objects on one location: each "start of the program" gets its own."""
    kind: str = request.param
    if kind == "sqlite":
        yield lambda: SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.sqlite'}")
    elif kind == "file":
        yield lambda: FileStore(tmp_path / "tasks")
    elif kind == "postgresql":
        url = request.getfixturevalue("postgres_url")
        table = f"tasks_{uuid.uuid4().hex[:10]}"
        yield lambda: SQLAlchemyStore(url, tablename=table)
    else:
        with servers.redis_prefix() as prefix:
            url = servers.redis_url()
            yield lambda: RedisStore(url, prefix=prefix)


class Program:
    """One start of the program: a scheduler on the shared store and the fake clock,
    recording the runs and missed runs of its tasks."""

    def __init__(self, new_store: Callable[[], BaseStore], clock: FakeClock) -> None:
        self.events: list[Any] = []
        self.scheduler = BackgroundScheduler(
            stores={"default": new_store()},
            executors={"default": DebugExecutor()},
            timezone="UTC",
            clock=clock,
        )
        self.scheduler.add_listener(self.events.append, TASK_EXECUTED | TASK_MISSED | TASK_ADDED)

    def outcomes(self) -> list[tuple[str, str, str]]:
        return [
            (
                e.task_id,
                "ran" if e.code == TASK_EXECUTED else "missed",
                e.scheduled_run_time.strftime("%H:%M"),
            )
            for e in self.events
            if e.code in (TASK_EXECUTED, TASK_MISSED)
        ]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` runs were executed or reported missed."""
        deadline = time.monotonic() + timeout
        while len(self.outcomes()) < count:
            assert time.monotonic() < deadline, f"only {self.outcomes()} within {timeout} s"
            time.sleep(0.01)

    def settle(self) -> None:
        """Give the scheduler's thread time for a pass or two (for "nothing happens")."""
        time.sleep(0.3)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def programs(
    new_store: Callable[[], BaseStore], clock: FakeClock
) -> Iterator[Callable[[], Program]]:
    made: list[Program] = []

    def start() -> Program:
        made.append(Program(new_store, clock))
        return made[-1]

    yield start
    for program in made:
        program.stop()


def first_run(programs: Callable[[], Program], clock: FakeClock, **rules: Any) -> None:
    """The program runs from 00:00:30 to 00:01:10 (the 00:01 run happens), then is down
    until 00:04:30: the runs of 00:02, 00:03 and 00:04 fall due while nobody runs."""
    program = programs()
    program.scheduler.add_task(refresh, "cron", minute="*", id="t", replace_existing=True, **rules)
    program.scheduler.start()
    clock.set(T0.replace(minute=1, second=0))
    program.wait_for(1)
    assert program.outcomes() == [("t", "ran", "00:01")]
    clock.advance(timedelta(seconds=10))
    program.stop()
    clock.set(T0.replace(minute=4, second=30))


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"mistrigger_grace_time": None}, [("t", "ran", "00:04")]),
        (
            {"mistrigger_grace_time": None, "coalesce": False},
            [("t", "ran", "00:02"), ("t", "ran", "00:03"), ("t", "ran", "00:04")],
        ),
        ({}, [("t", "missed", "00:04")]),  # 30 s late, more than the default 1 s
        ({"mistrigger_grace_time": 60}, [("t", "ran", "00:04")]),
    ],
    ids=["grace-none", "grace-none-each", "default-grace", "grace-60"],
)
def test_the_runs_due_while_down_are_run_or_reported(
    programs: Callable[[], Program],
    clock: FakeClock,
    rules: dict[str, Any],
    expected: list[tuple[str, str, str]],
) -> None:
    first_run(programs, clock, **rules)
    program = programs()
    program.scheduler.add_task(refresh, "cron", minute="*", id="t", replace_existing=True, **rules)
    program.scheduler.start()
    program.wait_for(len(expected))
    program.settle()
    assert program.outcomes() == expected
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time == T0.replace(minute=5, second=0)


def test_a_changed_definition_with_the_same_trigger_is_taken(
    programs: Callable[[], Program], clock: FakeClock
) -> None:
    first_run(programs, clock, mistrigger_grace_time=None)
    program = programs()
    program.scheduler.add_task(
        refresh,
        "cron",
        minute="*",
        id="t",
        args=["v2"],
        mistrigger_grace_time=None,
        replace_existing=True,
    )
    program.scheduler.start()
    program.wait_for(1)
    assert program.outcomes() == [("t", "ran", "00:04")]
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.args == ("v2",)


def test_a_changed_trigger_takes_the_new_schedule(
    programs: Callable[[], Program], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    first_run(programs, clock, mistrigger_grace_time=None)
    program = programs()
    program.scheduler.add_task(
        refresh, "cron", minute="*/10", id="t", mistrigger_grace_time=None, replace_existing=True
    )
    with caplog.at_level(logging.WARNING, logger="tickwork.scheduler"):
        program.scheduler.start()
    program.settle()
    assert program.outcomes() == []
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time == T0.replace(minute=10, second=0)
    assert task.trigger == CronTrigger(minute="*/10", timezone="UTC")
    # the old schedule's runs are not run: the log says which
    dropped = [r.getMessage() for r in caplog.records if "not run" in r.getMessage()]
    assert len(dropped) == 1, caplog.text
    assert "'t'" in dropped[0]
    assert "2026-01-01T00:02:00+00:00" in dropped[0]


def test_keep_leaves_the_stored_task_as_it_is(
    programs: Callable[[], Program], clock: FakeClock
) -> None:
    first_run(programs, clock)
    program = programs()
    added = program.scheduler.add_task(
        refresh, "cron", minute="*/10", id="t", args=["v2"], replace_existing="keep"
    )
    assert added.args == ("v2",)  # not started yet: the store is read at start()
    program.scheduler.start()
    program.wait_for(1)
    # the stored task, with its trigger, rules and next run time: its missed run is
    # reported by its own rules (the default grace time)
    assert program.outcomes() == [("t", "missed", "00:04")]
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.args == ()
    assert task.trigger == CronTrigger(minute="*", timezone="UTC")
    assert task.next_run_time == T0.replace(minute=5, second=0)
    # on a running scheduler add_task returns the stored task
    again = program.scheduler.add_task(
        refresh, "cron", minute="*/10", id="t", args=["v3"], replace_existing="keep"
    )
    assert again.args == ()
    assert again.next_run_time == T0.replace(minute=5, second=0)


def test_without_replace_existing_a_restart_still_conflicts(
    programs: Callable[[], Program], clock: FakeClock
) -> None:
    first_run(programs, clock)
    program = programs()
    program.scheduler.add_task(refresh, "cron", minute="*", id="t")
    with pytest.raises(ConflictIdError, match="'t'"):
        program.scheduler.start()


def test_re_adding_on_a_running_scheduler_keeps_the_schedule(
    programs: Callable[[], Program], clock: FakeClock
) -> None:
    """Another worker of a fleet starts, or a module is reloaded, while the task is
    stored: its next run time does not move."""
    program = programs()
    program.scheduler.start()
    program.scheduler.add_task(refresh, "interval", minutes=10, id="t")
    clock.advance(timedelta(minutes=3))
    program.scheduler.add_task(refresh, "interval", minutes=10, id="t", replace_existing=True)
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time == T0 + timedelta(minutes=10)
    # an explicit next_run_time still wins
    moved = T0 + timedelta(minutes=7)
    program.scheduler.add_task(
        refresh, "interval", minutes=10, id="t", next_run_time=moved, replace_existing=True
    )
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time == moved


def test_a_paused_task_stays_paused(programs: Callable[[], Program], clock: FakeClock) -> None:
    program = programs()
    program.scheduler.add_task(refresh, "interval", minutes=10, id="t")
    program.scheduler.start()
    program.scheduler.pause_task("t")
    program.stop()
    program = programs()
    program.scheduler.add_task(refresh, "interval", minutes=10, id="t", replace_existing=True)
    program.scheduler.start()
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.next_run_time is None


def test_the_decorator_form_works_across_restarts(
    programs: Callable[[], Program], clock: FakeClock
) -> None:
    for start in range(2):
        program = programs()
        program.scheduler.add_task(
            trigger="cron", minute="*", id="deco", mistrigger_grace_time=None
        )(report)
        program.scheduler.start()  # the second start raised ConflictIdError
        task = program.scheduler.get_task("deco")
        assert task is not None
        assert task.fn is report
        if start == 0:
            clock.set(T0.replace(minute=1, second=0))
            program.wait_for(1)
            program.stop()
            clock.set(T0.replace(minute=3, second=30))
    program.wait_for(1)
    assert program.outcomes() == [("deco", "ran", "00:03")]


@pytest.mark.parametrize("conflict", [True, "keep"])
def test_a_stored_task_that_cannot_be_loaded_is_replaced(
    programs: Callable[[], Program],
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    conflict: bool | str,
) -> None:
    """The function of the stored task was renamed in the new version: the store cannot
    load it (it logs why and skips it), and the task added now takes its place."""
    module = tmp_path / "renamed_app.py"
    module.write_text("def old_name() -> None:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    program = programs()
    program.scheduler.add_task("renamed_app:old_name", "interval", minutes=1, id="t")
    program.scheduler.start()
    program.stop()
    # (another size: a rewrite within the same second must not reuse the cached bytecode)
    module.write_text("def new_name() -> None:\n    return None\n")
    # (what a new process of the new version would see)
    monkeypatch.delitem(sys.modules, "renamed_app")
    importlib.invalidate_caches()
    ref_to_obj.cache_clear()
    program = programs()
    program.scheduler.add_task(
        "renamed_app:new_name", "interval", minutes=1, id="t", replace_existing=conflict
    )
    with caplog.at_level(logging.WARNING, logger="tickwork.scheduler"):
        program.scheduler.start()
    task = program.scheduler.get_task("t")
    assert task is not None
    assert task.fn_ref == "renamed_app:new_name"
    assert "cannot be loaded; replaced by the one added now" in caplog.text
