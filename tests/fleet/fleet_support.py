"""Run a fleet of scheduler processes (``fleet_worker.py``) and judge what they ran."""

from __future__ import annotations

import contextlib
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fleet_tasks import EPOCH

from tickwork.stores import BaseStore
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORKER = HERE / "fleet_worker.py"


@dataclass(frozen=True)
class Record:
    """One line of a worker's output file."""

    code: str
    task_id: str
    slot: float
    pid: int
    wall: float


def interval_task(task_id: str, fn: str, seconds: float, **fields: Any) -> Task:
    """A task on an interval from :data:`EPOCH` (so every process computes the same
    slots), with every field set, ready for a store."""
    trigger = IntervalTrigger(seconds=seconds, start_at=EPOCH, timezone="UTC")
    values: dict[str, Any] = {
        "coalesce": True,
        "max_instances": 1,
        "mistrigger_grace_time": 1.0,
        "next_run_time": trigger.get_next_trigger_time(UTC, None, datetime.now(UTC)),
        **fields,
    }
    return Task(fn, trigger, id=task_id, **values)


def tick_tasks(count: int, prefix: str = "tick", **fields: Any) -> list[Task]:
    """``count`` tasks running ``fleet_tasks:tick`` every second, on whole seconds."""
    return [
        interval_task(f"{prefix}-{index:02d}", "fleet_tasks:tick", 1, **fields)
        for index in range(count)
    ]


def add_tasks(store: BaseStore, tasks: Iterable[Task]) -> None:
    """Add tasks to a shared store before the fleet starts, then let go of it."""
    store.start("setup")
    try:
        store.add_tasks(list(tasks))
    finally:
        store.shutdown()


@dataclass
class Fleet:
    """Worker processes writing records under ``directory``; always stopped on exit."""

    directory: Path
    kind: str
    location: str
    options: list[str] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[str]] = field(default_factory=dict)
    killed: dict[int, float] = field(default_factory=dict)
    #: The worker script (``leader_worker.py`` for the leadership tests).
    worker: Path = WORKER

    def start(self, count: int, *extra: str) -> list[int]:
        """Start ``count`` workers; return their pids once every one is ready."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
        started: list[subprocess.Popen[str]] = []
        for _ in range(count):
            out = self.directory / f"worker-{len(self.processes) + len(started)}.log"
            with (self.directory / f"{out.stem}.err").open("w") as errors:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        str(self.worker),
                        str(out),
                        self.kind,
                        self.location,
                        *self.options,
                        *extra,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    env=env,
                )
            started.append(process)
            self.processes[process.pid] = process
        for process in started:
            assert process.stdout is not None
            line = _read_line(process.stdout, timeout=30)
            assert line.startswith("ready"), f"worker {process.pid} did not start: {line!r}"
        return [process.pid for process in started]

    def kill(self, pid: int) -> float:
        """SIGKILL one worker; return the wall time of the kill."""
        moment = time.time()
        os.kill(pid, signal.SIGKILL)
        self.processes[pid].wait(10)
        self.killed[pid] = moment
        return moment

    def stop(self) -> None:
        """SIGTERM every live worker (a clean shutdown), SIGKILL any that hangs."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()

    def records(self) -> list[Record]:
        return read_records(self.directory)

    def log_times(self, text: str) -> list[float]:
        """Wall times of the workers' log lines containing ``text``."""
        return sorted(
            float(line.split(" ", 1)[0])
            for path in self.directory.glob("*.err")
            for line in path.read_text().splitlines()
            if text in line and line[:1].isdigit()
        )

    def errors(self) -> str:
        """Everything the workers wrote to stderr (shown when a test fails)."""
        return "\n".join(p.read_text() for p in sorted(self.directory.glob("*.err")))


def read_records(directory: Path) -> list[Record]:
    """Every line of the ``worker-*.log`` files in ``directory``."""
    found = []
    for path in sorted(directory.glob("worker-*.log")):
        for line in path.read_text().splitlines():
            code, task_id, slot, pid, wall = line.split()
            found.append(Record(code, task_id, float(slot), int(pid), float(wall)))
    return found


#: The scheduler's warnings that name a span of runs not run and not reported one by one
#: (``tickwork.schedulers._lock_handover``): a task re-added with replace_existing over
#: a stored copy whose due runs nobody processed, and slots older than the look-back of
#: a lock handover.
DROPPED_RUNS = re.compile(
    r"task '(?P<task>[^']+)': (?:its runs due|runs) from (?P<first>\S+) until (?P<until>\S+) "
    r"(?:were processed by no scheduler|fell due while no process held)"
)


def dropped_runs(log: str) -> list[tuple[str, float, float]]:
    """(task id, first, until) of every span of runs a log's warnings name as not run:
    the runs at ``first`` and after, before ``until``."""
    return [
        (
            match["task"],
            datetime.fromisoformat(match["first"]).timestamp(),
            datetime.fromisoformat(match["until"]).timestamp(),
        )
        for match in DROPPED_RUNS.finditer(log)
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (this xdist worker's own)."""
    import servers  # tests/, on the path of the test process (not of fleet workers)

    return servers.free_port()


@contextlib.contextmanager
def gunicorn(
    directory: Path, app: str, workers: int, env: Mapping[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Serve ``app`` (``module:attribute`` in tests/fleet) with gunicorn and ``workers``
    uvicorn workers on 127.0.0.1; yield (the master, its log) once every worker has
    started its app (and scheduler). Always stopped (SIGTERM, then SIGKILL); fails if
    the log shows a traceback."""
    log = directory / "gunicorn.log"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        **env,
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "-w", str(workers)),
        *("-k", "uvicorn.workers.UvicornWorker", "--graceful-timeout", "10"),
        *("--chdir", str(HERE), "--bind", f"127.0.0.1:{free_port()}", app),
    ]
    with log.open("wb") as output:
        master = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
    try:
        wait_for_log(log, "Application startup complete", workers, master)
        yield master, log
    finally:
        if master.poll() is None:
            master.send_signal(signal.SIGTERM)
            try:
                master.wait(20)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(5)
    assert "Traceback" not in log.read_text(), log.read_text()


def wait_for_log(
    log: Path, text: str, count: int, master: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    """Wait until ``text`` appears ``count`` times in ``log``."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert master.poll() is None, f"gunicorn exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{text!r} not {count} times:\n{log.read_text()}"
        time.sleep(0.05)


@contextlib.contextmanager
def fleet(directory: Path, kind: str, location: str, *options: str) -> Iterator[Fleet]:
    running = Fleet(directory, kind, location, list(options))
    try:
        yield running
    finally:
        running.stop()


def _read_line(stream: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return "<timeout>"
    return stream.readline()


@dataclass
class Verdict:
    """What happened to every slot of some tasks in a window of whole seconds."""

    slots: int = 0
    executed: int = 0
    missed: int = 0
    logged: int = 0  # named not run by a warning (see dropped_runs), not by an event
    skipped: int = 0  # max_instances: a run of the task was in progress
    duplicates: list[tuple[str, float, list[int]]] = field(default_factory=list)
    lost: list[tuple[str, float]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.slots} slots: {self.executed} executed, {self.missed} reported missed, "
            f"{self.logged} named not run in a warning, "
            f"{self.skipped} skipped for max_instances, {len(self.duplicates)} executed "
            f"twice, {len(self.lost)} silently lost"
        )


def judge(
    records: Iterable[Record],
    task_ids: Iterable[str],
    first: float,
    last: float,
    dropped: Iterable[tuple[str, float, float]] = (),
) -> Verdict:
    """Check every slot (whole second) in ``[first, last]`` of each task: executed once,
    or reported (missed, skipped for max_instances, or in one of the ``dropped`` spans
    a warning named); never executed twice, never without a trace."""
    spans = list(dropped)
    outcome: dict[tuple[str, float], list[Record]] = defaultdict(list)
    for record in records:
        if record.code in ("EXE", "MIS", "ERR", "MAX"):
            outcome[(record.task_id, record.slot)].append(record)
    verdict = Verdict()
    for task_id in task_ids:
        for second in range(math.ceil(first), math.floor(last) + 1):
            verdict.slots += 1
            found = outcome.get((task_id, float(second)), [])
            runs = [r.pid for r in found if r.code in ("EXE", "ERR")]
            if len(runs) > 1:
                verdict.duplicates.append((task_id, float(second), runs))
            if runs:
                verdict.executed += 1
            elif any(r.code == "MIS" for r in found):
                verdict.missed += 1
            elif any(t == task_id and a <= second < b for t, a, b in spans):
                verdict.logged += 1
            elif any(r.code == "MAX" for r in found):
                verdict.skipped += 1
            else:
                verdict.lost.append((task_id, float(second)))
    return verdict
