"""Run records in an SQL table (SQLite, PostgreSQL, MariaDB / MySQL) through SQLAlchemy.

The table, ``<table_name>`` (created by :meth:`SQLRunLog.create`):

* ``run_id``: primary key (at most 1024 characters; bytes on MySQL, so ids compare
  exactly, case and trailing spaces included);
* ``task_id`` (the store's task id type), ``task_name``, ``outcome``, ``attempt``,
  ``duration`` (seconds, double), ``error``, ``traceback`` (text; MEDIUMTEXT on MySQL),
  ``scheduler``, ``executor``;
* ``scheduled_run_time``, ``started_at``, ``finished_at``: UTC **microseconds** since the
  epoch (BIGINT). Integers, the same on every dialect: they order and compare exactly
  (a double loses microseconds past the year 2106) and read back as the very same
  instant, as an aware UTC datetime;
* indexes: ``(task_id, scheduled_run_time)`` (a task's runs, newest first),
  ``(scheduled_run_time)`` (all runs; retention by age) and ``(outcome,
  scheduled_run_time)``.

``<table_name>_meta`` holds ``schema_version``. Upgrades only ever **add** columns
(nullable, or with a server default): a later version lists its new columns in
:data:`ADDED_COLUMNS` under its number, and :meth:`SQLRunLog.create` adds any column
the table lacks (``ALTER TABLE ... ADD COLUMN``) and records the new version. Nothing
is dropped or renamed, so a tickwork that knows an older version keeps reading and
writing a newer table (it names its columns; the new ones stay NULL in its rows) and
never lowers the recorded version: a fleet can be upgraded one member at a time.

The rule (the first final outcome wins) is enforced by the database, in one statement
per row: an upsert that replaces an existing row only while its outcome is
``'running'``. PostgreSQL and SQLite: ``INSERT ... ON CONFLICT (run_id) DO UPDATE SET
... WHERE <table>.outcome = 'running'``. MariaDB / MySQL: ``INSERT ... ON DUPLICATE KEY
UPDATE col = CASE WHEN outcome = 'running' THEN VALUES(col) ELSE col END`` for each
column, ``outcome`` assigned last (MySQL applies the assignments left to right, each
seeing the ones before: were ``outcome`` changed first, the other columns would keep
their old values). The row lock the upsert takes makes racing writers (threads,
processes, hosts) queue; the second one sees the first one's outcome.

What is atomic: a :meth:`~SQLRunLog.write` call is one transaction (all its records, or
none); its rows are written in run-id order, so two writers' batches lock rows in the
same order, and a transaction the database aborts to break a deadlock anyway is run
again (up to six times, as the store does). :meth:`~SQLRunLog.prune` deletes in
batches of 500 rows, each its own short transaction: it selects the ids, then deletes
them (``DELETE ... WHERE run_id IN (...) AND outcome <> 'running'``); MariaDB cannot
``LIMIT`` inside an ``IN`` subquery, and one way for every dialect keeps it simple.

Rows that do not read as a record (an unknown outcome, a time out of range) are skipped
by reads and logged once; they count as final for the rule and for retention. Database
errors are not translated: the caller (the store) turns them into
:class:`~tickwork.exceptions.StoreUnavailableError` as it does for its own statements.
The engine is the caller's: its pool, timeouts and session settings (the store's
``io_timeout`` bounds) apply, and :meth:`~SQLRunLog.close` leaves it open.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    case,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from tickwork.exceptions import ConfigurationError
from tickwork.runs import RunRecord
from tickwork.runs._records import DamagedRecord, DamageLog, apply_rule, check_record
from tickwork.runs.base import RunLog
from tickwork.stores._sql_conflicts import CONFLICT_ATTEMPTS, conflict_pause, is_lock_conflict
from tickwork.stores._sql_schema import MYSQL, TaskId, meta_table

__all__ = ["ADDED_COLUMNS", "MAX_RUN_ID_LENGTH", "SCHEMA_VERSION", "SQLRunLog"]

#: The table layout this tickwork writes; recorded in ``<table_name>_meta``.
SCHEMA_VERSION = 1
#: Columns each schema version added, by version number (none yet: version 1 is the
#: first). Each entry makes a new :class:`~sqlalchemy.Column`, nullable or with a
#: server default, so rows written by an older tickwork stay valid.
ADDED_COLUMNS: Mapping[int, Sequence[Callable[[], Column[Any]]]] = {}
#: The longest run id (characters; bytes on MySQL, where a key holds 3072 bytes).
MAX_RUN_ID_LENGTH = 1024

# Rows per statement when writing, per batch when pruning.
_BATCH = 500
_TIME_COLUMNS = ("scheduled_run_time", "started_at", "finished_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The range of a BIGINT: a cutoff beyond it is clamped (the driver would refuse it).
_BIGINT = (-(2**63), 2**63 - 1)
_SUPPORTED = ("postgresql", "sqlite", *MYSQL)


class RunId(TypeDecorator[str]):
    """A run id column: VARCHAR(1024), except VARBINARY on MySQL (whose string collations
    ignore case or trailing spaces, so distinct ids could collide)."""

    impl = String(MAX_RUN_ID_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(MAX_RUN_ID_LENGTH))
        return dialect.type_descriptor(String(MAX_RUN_ID_LENGTH))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in MYSQL:
            return value.encode("utf-8", "surrogatepass")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8", "surrogatepass")
        return value  # type: ignore[no-any-return]


def run_log_table(
    metadata: MetaData,
    table_name: str,
    version: int = SCHEMA_VERSION,
    added: Mapping[int, Sequence[Callable[[], Column[Any]]]] = ADDED_COLUMNS,
) -> Table:
    """The run-log table of schema ``version`` (the base columns plus those ``added`` up
    to it) in ``metadata``; the one already there if ``metadata`` has it."""
    key = f"{metadata.schema}.{table_name}" if metadata.schema else table_name
    if key in metadata.tables:
        return metadata.tables[key]
    long_text = Text().with_variant(mysql.MEDIUMTEXT(), *MYSQL)
    columns: list[Column[Any]] = [
        Column("run_id", RunId(), primary_key=True),
        Column("task_id", TaskId(), nullable=False),
        Column("task_name", Text(), nullable=False),
        Column("scheduled_run_time", BigInteger(), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("started_at", BigInteger(), nullable=True),
        Column("finished_at", BigInteger(), nullable=True),
        Column("duration", Double(), nullable=True),
        Column("attempt", Integer(), nullable=False),
        Column("error", long_text, nullable=True),
        Column("traceback", long_text, nullable=True),
        Column("scheduler", Text(), nullable=True),
        Column("executor", Text(), nullable=True),
    ]
    for number in sorted(added):
        if number <= version:
            columns.extend(make() for make in added[number])
    return Table(
        table_name,
        metadata,
        *columns,
        Index(f"ix_{table_name}_task_time", "task_id", "scheduled_run_time"),
        Index(f"ix_{table_name}_time", "scheduled_run_time"),
        Index(f"ix_{table_name}_outcome_time", "outcome", "scheduled_run_time"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


class SQLRunLog(RunLog):
    """Run records in the table ``table_name`` of the database behind ``engine`` (see the
    module docstring). ``metadata`` places the tables (its ``schema``) and lets a store
    create them along with its own; without it the log has a :class:`MetaData` of its
    own. Call :meth:`create` once before use. ``logger`` receives the damage reports.
    """

    #: The schema version this class writes, and the columns each version added (a
    #: subclass may name later ones; see the module docstring).
    schema_version: ClassVar[int] = SCHEMA_VERSION
    added_columns: ClassVar[Mapping[int, Sequence[Callable[[], Column[Any]]]]] = ADDED_COLUMNS

    def __init__(
        self,
        engine: Engine,
        table_name: str,
        metadata: MetaData | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        if engine.dialect.name not in _SUPPORTED:
            raise ConfigurationError(
                f"the SQL run log supports SQLite, PostgreSQL and MariaDB / MySQL, not "
                f"{engine.dialect.name!r}"
            )
        self.engine = engine
        self.table_name = table_name
        self.metadata = metadata if metadata is not None else MetaData()
        self.table = run_log_table(
            self.metadata, table_name, self.schema_version, self.added_columns
        )
        self.meta = meta_table(self.metadata, table_name)
        self.logger = logger or logging.getLogger(__name__)
        where = engine.url.render_as_string(hide_password=True)
        self._damage = DamageLog(self.logger, f"SQL run log {table_name!r} at {where}")
        self._upsert = self._upsert_statement()
        # PostgreSQL orders text by the database's collation, which need not be code
        # point order; "C" is, like SQLite's BINARY and MySQL's bytes.
        run_id = self.table.c.run_id
        self._run_id_order: ColumnElement[Any] = (
            run_id.collate("C") if engine.dialect.name == "postgresql" else run_id
        )

    def __repr__(self) -> str:
        return f"<SQLRunLog table={self.table_name!r} url={self.engine.url!r}>"

    # -- schema -----------------------------------------------------------------------

    def create(self) -> None:
        """Create the tables if missing, add the columns of later schema versions a
        table lacks, and record the schema version (never lowering it). Idempotent,
        and safe when several processes run it at once."""
        # Processes starting at once may all try CREATE TABLE; the losers' errors
        # (which differ per backend) are harmless once the table exists.
        for attempt in range(3):
            try:
                self.metadata.create_all(
                    self.engine, tables=[self.table, self.meta], checkfirst=True
                )
                break
            except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError):
                if attempt == 2:
                    raise
        self._add_missing_columns()
        found = self._recorded_version()
        if found is None:
            # A concurrent create() may record it first; its row is as good as ours.
            with contextlib.suppress(sa_exc.IntegrityError), self.engine.begin() as conn:
                conn.execute(
                    insert(self.meta).values(key="schema_version", value=str(self.schema_version))
                )
        elif found < self.schema_version:
            meta = self.meta
            with self.engine.begin() as conn:
                conn.execute(
                    update(meta)
                    .where(meta.c.key == "schema_version", meta.c.value == str(found))
                    .values(value=str(self.schema_version))
                )
        elif found > self.schema_version:
            self.logger.info(
                "%r: the table follows run-log schema version %d, newer than this "
                "tickwork's (%d); it only adds columns, which this version leaves NULL",
                self,
                found,
                self.schema_version,
            )

    def _recorded_version(self) -> int | None:
        meta = self.meta
        with self.engine.connect() as conn:
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar_one_or_none()
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(
                f"{self!r}: {meta.name!r} holds schema_version {value!r}, which is not a "
                "version number; fix or delete that row"
            ) from None

    def _add_missing_columns(self) -> None:
        """``ALTER TABLE ... ADD COLUMN`` for each column of :attr:`table` the database's
        table lacks (those of schema versions newer than the table)."""
        table = self.table
        for attempt in range(3):
            with self.engine.connect() as conn:
                existing = {
                    column["name"]
                    for column in inspect(conn).get_columns(table.name, schema=table.schema)
                }
            missing = [column for column in table.columns if column.name not in existing]
            if not missing:
                return
            dialect = self.engine.dialect
            name = dialect.identifier_preparer.format_table(table)
            try:
                for column in missing:
                    ddl = CreateColumn(column).compile(dialect=dialect)
                    with self.engine.begin() as conn:
                        conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {ddl}")
                    self.logger.info("%r: added column %r", self, column.name)
            except (sa_exc.ProgrammingError, sa_exc.OperationalError):
                # Another process added it first (the error differs per backend); look
                # again, and give up only if it is still missing.
                if attempt == 2:
                    raise

    # -- writes -----------------------------------------------------------------------

    def _upsert_statement(self) -> Any:
        """The dialect's insert-or-replace-a-running-row statement (module docstring)."""
        table = self.table
        names = [column.name for column in table.columns if column.name != "run_id"]
        # Outcome last: MySQL's assignments see the ones before them (module docstring).
        names.sort(key=lambda name: name == "outcome")
        # An inline literal, not a parameter: PyMySQL's executemany turns the statement
        # into one multi-row INSERT only when no parameter follows the VALUES clause.
        replaceable = table.c.outcome == literal_column("'running'")
        dialect = self.engine.dialect.name
        if dialect in MYSQL:
            statement = mysql.insert(table)
            return statement.on_duplicate_key_update(
                [
                    (name, case((replaceable, statement.inserted[name]), else_=table.c[name]))
                    for name in names
                ]
            )
        module = postgresql if dialect == "postgresql" else sqlite
        upsert = module.insert(table)
        return upsert.on_conflict_do_update(
            index_elements=[table.c.run_id],
            set_={name: upsert.excluded[name] for name in names},
            where=replaceable,
        )

    def write(self, records: Iterable[RunRecord]) -> None:
        """See :meth:`RunLog.write`: one transaction, rows in run-id order."""
        rows = [_row(record) for record in apply_rule(records)]
        if not rows:
            return
        rows.sort(key=lambda row: row["run_id"])
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    for start in range(0, len(rows), _BATCH):
                        conn.execute(self._upsert, rows[start : start + _BATCH])
                return
            except sa_exc.DBAPIError as exc:
                # Rolled back whole by the database to break a deadlock: run it again.
                if attempt == CONFLICT_ATTEMPTS or not is_lock_conflict(exc):
                    raise
                time.sleep(conflict_pause(attempt))

    # -- reads ------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord | None:
        """See :meth:`RunLog.get`."""
        query = select(*self.table.c).where(self.table.c.run_id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._load(row) if row is not None else None

    def query(
        self,
        task_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """See :meth:`RunLog.query`: one indexed query (again, asking for more rows,
        when damaged rows took places in the answer)."""
        if limit <= 0:
            return []
        table = self.table
        query = select(*table.c).order_by(
            table.c.scheduled_run_time.desc(), self._run_id_order.desc()
        )
        if task_id is not None:
            query = query.where(table.c.task_id == task_id)
        if outcome is not None:
            query = query.where(table.c.outcome == outcome)
        if since is not None:
            query = query.where(table.c.scheduled_run_time >= _micros(since))
        extra = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query.limit(limit + extra)).all()
            records = [record for record in map(self._load, rows) if record is not None]
            if len(records) >= limit or len(rows) < limit + extra:
                return records[:limit]
            extra = len(rows) - len(records)

    def _load(self, row: Row[Any]) -> RunRecord | None:
        """The record of a row, or ``None`` (logged once) when it does not read as one."""
        fields = dict(row._mapping)
        try:
            for name in _TIME_COLUMNS:
                value = fields[name]
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int):
                    raise DamagedRecord(f"{name} is not an integer")
                try:
                    fields[name] = _EPOCH + value * _MICROSECOND
                except OverflowError:
                    raise DamagedRecord(f"{name} {value} is out of range") from None
            return check_record(fields)
        except DamagedRecord as exc:
            self._damage.report(tuple(row), f"{fields.get('run_id')!r}", str(exc))
            return None

    # -- retention --------------------------------------------------------------------

    def prune(self, now: datetime, max_age: float | None, max_per_task: int | None) -> int:
        """See :meth:`RunLog.prune`: batches of at most 500 rows, each selected and then
        deleted in a short transaction of its own, so no lock is held for long."""
        table = self.table
        final = table.c.outcome != "running"
        deleted = 0
        cutoff = _cutoff(now, max_age)
        if cutoff is not None:
            old = (
                select(table.c.run_id)
                .where(table.c.scheduled_run_time < cutoff, final)
                .order_by(table.c.scheduled_run_time)
            )
            deleted += self._delete_batches(old)
        if max_per_task is not None:
            keep = max(max_per_task, 0)
            crowded = select(table.c.task_id).where(final).group_by(table.c.task_id)
            crowded = crowded.having(func.count() > keep)
            with self.engine.connect() as conn:
                task_ids = list(conn.execute(crowded).scalars())
            for task_id in task_ids:
                surplus = (
                    select(table.c.run_id)
                    .where(table.c.task_id == task_id, final)
                    .order_by(table.c.scheduled_run_time.desc(), self._run_id_order.desc())
                    .offset(keep)
                )
                deleted += self._delete_batches(surplus)
        return deleted

    def _delete_batches(self, candidates: Any) -> int:
        """Delete the final rows ``candidates`` selects (by run id), 500 at a time, until
        it selects fewer; return how many were deleted."""
        table = self.table
        deleted = 0
        while True:
            with self.engine.connect() as conn:
                ids = list(conn.execute(candidates.limit(_BATCH)).scalars())
            if not ids:
                return deleted
            with self.engine.begin() as conn:
                result = conn.execute(
                    delete(table).where(table.c.run_id.in_(ids), table.c.outcome != "running")
                )
            deleted += max(result.rowcount, 0)
            if len(ids) < _BATCH or result.rowcount <= 0:
                # Fewer than a batch: that was the last one. None deleted: another pruner
                # is deleting the same rows; it will finish them.
                return deleted


def _micros(moment: datetime) -> int:
    """UTC microseconds since the epoch, exactly."""
    return (moment.astimezone(UTC) - _EPOCH) // _MICROSECOND


def _cutoff(now: datetime, max_age: float | None) -> int | None:
    """Records scheduled before this (microseconds) are older than ``max_age``."""
    if max_age is None or math.isnan(max_age):
        return None
    moment = _micros(now) - max_age * 1_000_000
    if math.isinf(moment):
        return _BIGINT[1] if moment > 0 else None
    # Integers below a fractional bound are the ones below its ceiling.
    return min(max(math.ceil(moment), _BIGINT[0]), _BIGINT[1])


def _row(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "task_id": record.task_id,
        "task_name": record.task_name,
        "scheduled_run_time": _micros(record.scheduled_run_time),
        "outcome": record.outcome,
        "started_at": _micros(record.started_at) if record.started_at is not None else None,
        "finished_at": _micros(record.finished_at) if record.finished_at is not None else None,
        "duration": record.duration,
        "attempt": record.attempt,
        "error": record.error,
        "traceback": record.traceback,
        "scheduler": record.scheduler,
        "executor": record.executor,
    }
