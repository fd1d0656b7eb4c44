"""What the Celery and arq executor tests share: a scheduler whose run events are waited
for, two executors playing two schedulers, worker and fleet-scheduler subprocesses, and
the exactly-once count of a fleet run.

The backend parts (which worker command, which broker) stay in :mod:`celery_support` and
:mod:`arq_support`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from executor_host import T0, Host
from servers import redis_url

from tickwork.events import TaskExecutionEvent
from tickwork.executors._keys import run_key
from tickwork.executors.base import BaseExecutor
from tickwork.runs import RunRecord
from tickwork.schedulers.background import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

#: Where the fleet tests' interval tasks start (their slots are aligned on it).
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class Outcomes:
    """The run events of a scheduler, waited for one by one."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[TaskExecutionEvent] = queue.SimpleQueue()

    def __call__(self, event: Any) -> None:
        self.events.put(event)

    def next(self, timeout: float = 20.0) -> TaskExecutionEvent:
        return self.events.get(timeout=timeout)


@contextlib.contextmanager
def running_scheduler(
    executor: dict[str, Any] | BaseExecutor, codes: int, wait: bool = True
) -> Iterator[tuple[BackgroundScheduler, Outcomes]]:
    """A started BackgroundScheduler with ``executor`` as its default executor (a config
    dict or an instance), and the events of ``codes`` it emits."""
    outcomes = Outcomes()
    sched = BackgroundScheduler(executors={"default": executor})
    sched.add_listener(outcomes, codes)
    sched.start()
    try:
        yield sched, outcomes
    finally:
        sched.shutdown(wait=wait)


@contextlib.contextmanager
def started(executors: list[BaseExecutor], prefix: str) -> Iterator[list[Host]]:
    """Start ``executors`` as schedulers would (one host each), stopped at the end."""
    hosts = [Host(asyncio.new_event_loop()) for _ in executors]
    for index, (executor, host) in enumerate(zip(executors, hosts, strict=True)):
        executor.start(host, f"{prefix}{index}")
    try:
        yield hosts
    finally:
        for executor, host in zip(executors, hosts, strict=True):
            executor.shutdown(wait=False)
            host.event_loop.close()


def redis_db_url(db: int) -> str:
    """The URL of database ``db`` on the tests' Redis server."""
    return f"{redis_url().rsplit('/', 1)[0]}/{db}"


def queue_name(kind: str) -> str:
    """A queue name of one test's own (its last six characters are hex: see :func:`slot`)."""
    return f"tickwork_{kind}_test_{uuid.uuid4().hex[:10]}"


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    """Return when ``condition()`` is true, or after ``timeout`` seconds (the test's own
    assertion then says what failed)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        threading.Event().wait(0.05)


def running_run(sched: BackgroundScheduler, task_id: str) -> tuple[RunRecord, str]:
    """The record of ``task_id``'s one running run (waited for) and the run's key."""
    wait_for(lambda: sched.get_runs(task_id, outcome="running"))
    (record,) = sched.get_runs(task_id, outcome="running")
    return record, run_key(task_id, record.scheduled_run_time)


def slot(name: str) -> datetime:
    """A slot of this test's own (a queue name's random part as seconds)."""
    return T0 + timedelta(seconds=int(name[-6:], 16))


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a worker or scheduler subprocess: this folder and the project
    importable."""
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def process(
    command: list[str],
    env: dict[str, str],
    log: Path | None,
    ready: Callable[[subprocess.Popen[bytes]], None] = lambda _: None,
    grace: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (output to ``log``) until the block ends; ``ready`` waits until it
    serves. At the end: SIGTERM, and SIGKILL when it has not stopped after ``grace``."""
    out: IO[bytes] | int = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    child = subprocess.Popen(command, env=env, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
    try:
        ready(child)
        yield child
    finally:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if not isinstance(out, int):
            out.close()


#: The fleet tests' store lease (seconds): a killed scheduler's runs are taken over then.
FLEET_LEASE = 3.0


def fleet_size(full_variable: str) -> tuple[int, float, float]:
    """How many tasks, every how many seconds, for how long: the short default, or the
    issue's size when the environment variable ``full_variable`` is ``1``."""
    return (30, 20.0, 180.0) if os.environ.get(full_variable) == "1" else (8, 2.0, 24.0)


def seed_fleet_store(url: str, ref: str, args: tuple[Any, ...], tasks: int, every: float) -> None:
    """Add ``tasks`` interval tasks calling ``ref(*args)`` every ``every`` seconds to the
    SQL store ``url``, their slots aligned (on 2020-01-01), the first 3 s from now; each
    slot must run (no coalescing, a long grace time)."""
    now = datetime.now(UTC)
    prefix = ref.partition("_")[0]
    made = []
    for index in range(tasks):
        trigger = IntervalTrigger(seconds=every, start_at=EPOCH, timezone="UTC")
        made.append(
            Task(
                ref,
                trigger,
                args=args,
                id=f"{prefix}-fleet-{index:02d}",
                executor="default",
                coalesce=False,
                max_instances=10,
                mistrigger_grace_time=120.0,
                next_run_time=trigger.get_next_trigger_time(UTC, None, now + timedelta(seconds=3)),
            )
        )
    store = SQLAlchemyStore(url, lease_time=FLEET_LEASE)
    store.start("setup")
    try:
        store.add_tasks(made)
    finally:
        store.shutdown()


def fleet_scheduler(
    url: str, executor: dict[str, Any], log: Path
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """One scheduler of a fleet test (:mod:`enqueue_fleet_scheduler`) on the SQL store
    ``url``, sending its runs to ``executor`` (a config dict)."""
    script = str(HERE / "enqueue_fleet_scheduler.py")
    command = [sys.executable, script, url, str(FLEET_LEASE), json.dumps(executor)]
    return process(command, child_env(), log, grace=20.0)


@dataclass
class FleetCount:
    """What a fleet test's workers executed: executions per run key, grouped by task."""

    counts: dict[str, int]
    every: float
    #: Each task's executed slot times (POSIX seconds, sorted).
    by_task: dict[str, list[float]] = field(init=False)
    #: Tasks with slots missing between their first and last: (task id, how many).
    lost: list[tuple[str, int]] = field(init=False)
    #: Run keys executed more than once, with how often.
    duplicates: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.by_task = {}
        for key in self.counts:
            task_id, _, when = key.partition("@")
            self.by_task.setdefault(task_id, []).append(datetime.fromisoformat(when).timestamp())
        self.lost = []
        for task_id, times in sorted(self.by_task.items()):
            times.sort()
            expected = round((times[-1] - times[0]) / self.every) + 1
            if expected != len(times):
                self.lost.append((task_id, expected - len(times)))
        self.duplicates = {key: n for key, n in self.counts.items() if n > 1}

    def report(self, tasks: int, seconds: float, extra: str) -> str:
        """One line for the test's output (and its assertions' messages)."""
        return (
            f"{tasks} tasks x every {self.every:g} s for {seconds:.0f} s: {len(self.counts)} "
            f"slots executed, {sum(self.counts.values())} executions, lost {self.lost}, "
            f"executed twice {self.duplicates}, {extra}"
        )

    def assert_exactly_once(self, tasks: int, run_for: float, report: str) -> None:
        """Every task ran, no slot was lost or executed twice, and every task ran from the
        start to near the end (its slots were not silently stopped)."""
        assert len(self.by_task) == tasks, report
        assert not self.lost, report
        assert not self.duplicates, report
        assert all(len(t) >= run_for / self.every * 0.6 for t in self.by_task.values()), report


def import_without(blocked: str, module: str) -> str:
    """What importing ``module`` says (its error's class and message) in a fresh
    interpreter where ``blocked`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout
