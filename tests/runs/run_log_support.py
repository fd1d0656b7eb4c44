"""Opening a run log of any backend from a plain description, in the test process and in
the writer processes of the race tests (``run_log_writer.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from tickwork.runs import RunRecord, make_run_id
from tickwork.runs.base import RunLog

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

#: Backends that keep records outside the process, shared by every process using them
#: (for a test module's ``LOG_KINDS``; see conftest.py).
SHARED = ("file", "sqlite", "postgresql", "mariadb", "redis")
SQL = ("sqlite", "postgresql", "mariadb")

#: Opens another log on the location of the test's log.
MakeLog = Callable[[], RunLog]


@dataclass(frozen=True)
class LogSpec:
    """Where a log keeps its records: ``kind`` and the location of that kind."""

    kind: str
    directory: str | None = None
    url: str | None = None
    table: str | None = None
    prefix: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LogSpec:
        return cls(**json.loads(text))


@contextlib.contextmanager
def open_log(spec: LogSpec) -> Iterator[RunLog]:
    """A log on ``spec``'s location (its table created), closed with what it needed."""
    if spec.kind == "file":
        from tickwork.runs.file import FileRunLog

        assert spec.directory is not None
        log: RunLog = FileRunLog(spec.directory)
        try:
            yield log
        finally:
            log.close()
    elif spec.kind in ("sqlite", "postgresql", "mariadb"):
        from tickwork.runs.sql import SQLRunLog
        from tickwork.stores._sql_schema import SessionBounds, create_engine_for

        assert spec.url is not None
        assert spec.table is not None
        # Built the way the SQL store builds its engine, bounds included.
        engine = create_engine_for(spec.url, None, 10.0)
        SessionBounds(engine, 10.0).attach()
        try:
            sql_log = SQLRunLog(engine, spec.table)
            sql_log.create()
            yield sql_log
            sql_log.close()
        finally:
            engine.dispose()
    elif spec.kind == "redis":
        import redis

        from tickwork.runs.redis import RedisRunLog

        assert spec.url is not None
        assert spec.prefix is not None
        client = redis.Redis.from_url(spec.url, socket_timeout=10)
        try:
            redis_log = RedisRunLog(client, spec.prefix)
            yield redis_log
            redis_log.close()
        finally:
            client.close()
    else:  # pragma: no cover - a typo in a test
        raise ValueError(spec.kind)


def record(
    task_id: str = "t", minute: int = 0, outcome: str = "success", attempt: int = 1
) -> RunRecord:
    """A record of task ``task_id``'s run at ``T0 + minute`` minutes ending in ``outcome``."""
    scheduled = T0 + timedelta(minutes=minute)
    return RunRecord(
        run_id=make_run_id(task_id, scheduled, attempt),
        task_id=task_id,
        task_name=f"name of {task_id}",
        scheduled_run_time=scheduled,
        outcome=outcome,  # type: ignore[arg-type]
        started_at=scheduled if outcome != "missed" else None,
        finished_at=None if outcome == "running" else scheduled + timedelta(seconds=1),
        duration=None if outcome == "running" else 1.0,
        attempt=attempt,
        error="ValueError: boom" if outcome == "error" else None,
        scheduler="host-1",
        executor="default",
    )
