"""Tasks in an SQL database through SQLAlchemy: SQLite, PostgreSQL, MariaDB / MySQL.

Without ``url`` or ``engine`` the store uses ``sqlite:///tickwork.sqlite``: a file named
``tickwork.sqlite`` in the current working directory of the process.

The schema (created by :meth:`SQLAlchemyStore.start` when missing):

* ``<tablename>``: ``id`` (primary key, at most 191 characters so MySQL's utf8mb4 index
  limit holds; stored as bytes on MySQL so ids compare exactly, case and trailing spaces
  included), ``next_run_time`` (epoch seconds as a double, indexed: every "what is due?"
  query walks that index), ``state`` (the serializer's bytes), ``lease_owner`` /
  ``lease_expires`` (nullable, for schedulers that share a store and lease tasks), and
  ``leader_only`` (1 for a task only the fleet's leader runs).
* ``<tablename>_runs``: one row per run in progress (see :mod:`tickwork.stores._sql_runs`).
* ``<tablename>_leader``: the term of the fleet's leader (see
  :mod:`tickwork.stores._sql_leader`).
* ``<tablename>_meta``: key/value rows; ``schema_version`` says which tickwork schema the
  table follows, so a later tickwork can migrate it, and an older one refuses to touch
  a newer schema. Version 2 added the runs table and the use of the lease columns;
  version 3 the runs' ``attempt`` and ``cancel`` columns (pending retries and cancel
  requests), version 4 the ``leader_only`` column and the leader table. An older table is upgraded in place by :meth:`SQLAlchemyStore.start`
  (columns are added, nothing is dropped), after which an older tickwork refuses it
  rather than mishandling what it does not know.

Several schedulers, on any number of hosts, may share one table (PostgreSQL, MariaDB /
MySQL; SQLite on one host): due tasks are claimed with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (on SQLite under ``BEGIN IMMEDIATE``, its database-wide write lock) and every
run is recorded before it starts; see :mod:`tickwork.stores.base` and
``docs/many-workers.md``.

Engines the store creates itself use ``pool_pre_ping`` (a restarted server is reconnected
transparently); SQLite files additionally get WAL journaling (readers do not block the
writer). Every call is bounded by ``io_timeout`` (default 5 s): lock waits, statements,
connecting and socket I/O (see :mod:`tickwork.stores._sql_schema` for what each dialect
sets). Connection failures and calls that exceed the bound raise
:class:`~tickwork.exceptions.StoreUnavailableError`, chained to the driver's error, so
the scheduler can retry later. An in-memory SQLite URL (``sqlite://``) shares one
connection and suits single-threaded tests only.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    MetaData,
    Select,
    Update,
    bindparam,
    case,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, make_url

from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    InvalidTaskError,
    MissingDependencyError,
    StoreUnavailableError,
    TaskLookupError,
)
from tickwork.runs.sql import SQLRunLog
from tickwork.security.files import create_private_file
from tickwork.serializers import BaseSerializer, resolve_serializer
from tickwork.serializers._broken import BrokenTasks
from tickwork.stores._claimed import ClaimedRecords, merge_changed
from tickwork.stores._sql_bulk import (
    BinaryList,
    binary_arrays,
    chunks_for,
    ids_in,
    release_statement,
)
from tickwork.stores._sql_conflicts import (
    CONFLICT_ATTEMPTS,
    conflict_pause,
    is_lock_conflict,
    is_timeout,
)
from tickwork.stores._sql_leader import LeaderTable
from tickwork.stores._sql_runs import RunTable, blobs_by_id
from tickwork.stores._sql_schema import (
    DEFAULT_IO_TIMEOUT,
    DEFAULT_URL,
    MAX_ID_LENGTH,
    MYSQL,
    SCHEMA_VERSION,
    SessionBounds,
    TaskId,
    check_io_timeout,
    create_engine_for,
    create_schema,
    meta_table,
    tasks_table,
)
from tickwork.stores._sql_tags import clear_tags, forget_tags, tags_table, write_tags
from tickwork.stores.base import (
    BaseStore,
    InProgressRun,
    LeaderTerm,
    NextRunTime,
    PendingRetry,
    RunKey,
)
from tickwork.tasks import Task

__all__ = ["DEFAULT_URL", "MAX_ID_LENGTH", "SCHEMA_VERSION", "SQLAlchemyStore"]

# Rows per page when looking for the next run time past claimed tasks.
#: What an out-of-range next_run_time column reads as (see SQLAlchemyStore._time_of).
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)

_NEXT_PAGE = 20
# Bound parameters per IN (...) list: below every backend's limit (SQLite's is 999 on old
# builds).
_CHUNK = 500

_Result = TypeVar("_Result")


class SQLAlchemyStore(BaseStore):
    """Tasks in one table of an SQL database; see the module docstring for the schema.

    Give ``url`` (an SQLAlchemy URL, default ``sqlite:///tickwork.sqlite``) or an
    ``engine`` you manage (the store then leaves its pool settings and pragmas alone and
    does not dispose it). ``engine_options`` go to ``create_engine``. ``tablename`` and
    ``schema`` place the table, so several stores can share a database. ``serializer``
    is a :class:`~tickwork.serializers.base.BaseSerializer`, ``"json"`` (the default) or
    ``"pickle"``. ``lease_time`` (seconds, default 10) bounds how long the runs of a
    scheduler that died stay unattended.

    ``io_timeout`` (seconds, default 5) bounds each statement's lock waits and run time,
    connecting, and waiting for the server; a call that exceeds it raises
    :class:`~tickwork.exceptions.StoreUnavailableError` naming the store, the operation
    and the bound. On an ``engine`` you pass in, the session settings are applied to
    every connection the engine hands out (your own code's included) and the driver's
    connect / socket timeouts stay yours to set (``connect_args``); see
    ``docs/persistence.md``. Everything else: see :class:`~tickwork.stores.base.BaseStore`.
    """

    supports_leases = True
    supports_election = True

    def __init__(
        self,
        url: str | URL | None = None,
        engine: Engine | None = None,
        tablename: str = "tickwork_tasks",
        serializer: BaseSerializer | str | None = None,
        schema: str | None = None,
        engine_options: dict[str, Any] | None = None,
        lease_time: float = 10.0,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
    ) -> None:
        super().__init__()
        if url is not None and engine is not None:
            raise ConfigurationError("give the SQLAlchemyStore a url or an engine, not both")
        if not lease_time > 0:
            raise ConfigurationError(f"lease_time must be positive, got {lease_time!r}")
        self.lease_time = float(lease_time)
        self.io_timeout = check_io_timeout(io_timeout)
        self.serializer = resolve_serializer(serializer)
        self._owns_engine = engine is None
        if engine is None:
            try:
                engine = create_engine_for(url, engine_options, self.io_timeout)
            except ModuleNotFoundError as exc:  # the URL's driver is not installed
                raise _missing_driver(url, exc) from exc
        self.engine = engine
        _create_sqlite_file(engine)
        self._bounds = SessionBounds(self.engine, self.io_timeout)
        self._bounds.attach()
        self.tablename = tablename
        self._metadata = MetaData(schema=schema)
        self._tasks = tasks_table(self._metadata, tablename)
        self._meta = meta_table(self._metadata, tablename)
        self._tags = tags_table(self._metadata, tablename)
        self._runs = RunTable(
            self._metadata, tablename, TaskId(), MAX_ID_LENGTH, self.serializer, self.logger
        )
        self._leader = LeaderTable(self._metadata, tablename, MAX_ID_LENGTH)
        #: The leader's term this instance holds, (owner, generation), or None.
        self._term: tuple[str, int] | None = None
        # SQLite has no row locks: its write transactions take the database lock up front.
        self._row_locks = self.engine.dialect.name != "sqlite"
        self._raw_insert = self._driver_insert_sql()
        self._broken = BrokenTasks(self.logger)
        #: The bytes of each task this object claimed, until its write-back (see _claimed).
        self._claimed = ClaimedRecords()
        self._release_bulk: Update | None = None
        #: Set once start() has created (or found) the tables. Before that the table may
        #: not exist yet: reads find no tasks there instead of failing.
        self._schema_ready = False

    # -- lifecycle ------------------------------------------------------------------------

    def _install_serializer(self, serializer: BaseSerializer) -> None:
        """See :meth:`BaseStore._install_serializer`: the runs table (pending retries)
        uses it too."""
        self.serializer = serializer
        self._runs._serializer = serializer

    def start(self, alias: str) -> None:
        """Create the tables if missing and check (or record) the schema version."""
        super().start(alias)
        self._bounds.attach()  # again after a shutdown
        with self._unavailable("create its schema"):
            create_schema(self.engine, self._metadata, self._meta, self.tablename, self.logger)
        with self._unavailable("prepare its leader table"):
            self._leader.ensure_row(self.engine)
        with self._unavailable("create its run history table"):
            self.run_log.create()  # (created and upgraded with the store, never dropped)
        self._schema_ready = True

    @property
    def run_log(self) -> SQLRunLog:
        """The run records, in the table ``<tablename>_history`` beside the tasks (see
        :mod:`tickwork.runs.sql`): every scheduler sharing the store reads the same."""
        log = getattr(self, "_run_log", None)
        if not isinstance(log, SQLRunLog):
            log = self._run_log = SQLRunLog(
                self.engine, f"{self.tablename}_history", logger=self.logger
            )
        return log

    def shutdown(self) -> None:
        """Close the pooled connections of an engine this store created; stop adding the
        I/O bounds to the connections of an engine it was given."""
        self._broken.clear()
        self._claimed.clear()
        if self._owns_engine:
            self.engine.dispose()
        else:
            self._bounds.detach()

    def _write(self, action: str, work: Callable[[Connection], _Result]) -> _Result:
        """Return ``work(conn)`` run in a write transaction (:meth:`_transaction`).

        A transaction the database aborted to resolve a lock conflict (a deadlock between
        schedulers claiming and writing back rows) was rolled back whole: it is run
        again after a short random pause, up to ``CONFLICT_ATTEMPTS`` times in all,
        instead of reporting the store unavailable (see :mod:`._sql_conflicts`).
        ``work`` must therefore have no effect outside the transaction.

        Attempts start only within ``io_timeout`` of the first, so a call that keeps
        losing deadlocks ends after about twice its bound at worst. A lock wait that
        timed out is not a conflict: it is raised at once (the reasons are in
        :mod:`._sql_conflicts`)."""
        deadline = time.monotonic() + self.io_timeout
        for attempt in itertools.count(1):
            try:
                with self._transaction(action) as conn:
                    return work(conn)
            except StoreUnavailableError as exc:
                pause = conflict_pause(attempt)
                if (
                    attempt >= CONFLICT_ATTEMPTS
                    or not is_lock_conflict(exc.__cause__)
                    or time.monotonic() + pause >= deadline
                ):
                    raise
                self.logger.info(
                    "SQL store %r: %s hit a lock conflict (attempt %d); trying again",
                    self.alias,
                    action,
                    attempt,
                )
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the database's write lock from the
        start (``BEGIN IMMEDIATE``), so what it reads cannot change before it writes."""
        with self._unavailable(action), self.engine.begin() as conn:
            if not self._row_locks:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            binary_arrays(conn)  # (PostgreSQL's one-statement forms, see _sql_bulk)
            yield conn

    @contextlib.contextmanager
    def _unavailable(self, action: str) -> Iterator[None]:
        """Turn the driver's connection failures and timeouts into
        :class:`StoreUnavailableError` naming the store, ``action`` and the bound."""
        try:
            yield
        except (
            sa_exc.OperationalError,
            sa_exc.InterfaceError,
            sa_exc.DisconnectionError,
            sa_exc.TimeoutError,
        ) as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            reason = getattr(exc, "orig", None) or exc
            if is_timeout(exc):
                raise StoreUnavailableError.timed_out(
                    "SQL", self.alias, action, self.io_timeout, f"{reason} (at {where})"
                ) from exc
            raise StoreUnavailableError(
                f"SQL store {self.alias!r} could not {action} at {where}: {reason}"
            ) from exc

    # -- writes ---------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        """Store a new task (see :meth:`BaseStore.add_task`)."""
        self.add_tasks([task])

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        """Store several new tasks in one transaction: all of them or, on a duplicate id
        (in the batch or in the table), none."""
        tasks = list(tasks)
        rows = [self._row(task) for task in tasks]
        seen: set[str] = set()
        for task in tasks:
            if task.id in seen:
                raise ConflictIdError(task.id)
            seen.add(task.id)
        if not rows:
            return
        raw_insert = self._raw_insert

        def insert_rows(conn: Connection) -> None:
            if raw_insert is not None:
                conn.exec_driver_sql(
                    raw_insert,
                    [
                        (row["id"], row["next_run_time"], row["state"], row["leader_only"])
                        for row in rows
                    ],
                )
            else:
                conn.execute(insert(self._tasks), rows)
            if any(task.tags for task in tasks):
                write_tags(conn, self._tags, tasks, replace=False)

        try:
            self._write("add tasks", insert_rows)
        except sa_exc.IntegrityError:
            raise ConflictIdError(self._first_existing([task.id for task in tasks])) from None
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)

    def _driver_insert_sql(self) -> str | None:
        """The task INSERT as the driver's own SQL, for drivers that need no conversion of
        the values (SQLite with ``?`` parameters: text, float, bytes), else ``None``.

        ``add_tasks`` then hands all rows to the driver's ``executemany`` at once: a
        third less time per row than SQLAlchemy's parameter processing (about 7 -> 4.5
        us), which the bulk add of many tasks mostly consists of besides encoding.
        Other backends keep SQLAlchemy's path: MySQL ids are converted to bytes, and
        PostgreSQL's multi-row ``VALUES`` batching is already what makes it fast.
        """
        dialect = self.engine.dialect
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            return None
        columns = ("id", "next_run_time", "state", "leader_only")
        statement = insert(self._tasks).values({name: bindparam(name) for name in columns})
        compiled = statement.compile(dialect=dialect)
        if list(compiled.positiontup or ()) != list(columns):
            return None
        return compiled.string

    def _first_existing(self, ids: list[str]) -> str:
        """The first of ``ids`` already stored (the one an insert conflicted on)."""
        with self._unavailable("look up task ids"), self.engine.connect() as conn:
            for chunk in _chunks(ids):
                found = set(
                    conn.execute(
                        select(self._tasks.c.id).where(self._tasks.c.id.in_(chunk))
                    ).scalars()
                )
                for task_id in chunk:
                    if task_id in found:
                        return task_id
        return ids[0]  # a concurrent delete removed it again; still report a conflict

    def update_task(self, task: Task) -> None:
        """Replace the stored task (see :meth:`BaseStore.update_task`)."""
        row = self._row(task)
        table = self._tasks
        statement = (
            update(table)
            .where(table.c.id == task.id)
            .values(
                next_run_time=row["next_run_time"],
                state=row["state"],
                leader_only=row["leader_only"],
            )
        )

        def write(conn: Connection) -> int:
            count: int = conn.execute(statement).rowcount
            if count:
                write_tags(conn, self._tags, [task], replace=True)
            return count

        if self._write("update a task", write) == 0:
            raise TaskLookupError(task.id, self.alias)
        task.store_alias = self.alias
        self._broken.forget(task.id)

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        statement = delete(self._tasks).where(self._tasks.c.id == task_id)

        def write(conn: Connection) -> int:
            forget_tags(conn, self._tags, [task_id])
            count: int = conn.execute(statement).rowcount
            return count

        if self._write("remove a task", write) == 0:
            raise TaskLookupError(task_id, self.alias)
        self._broken.forget(task_id)

    def remove_all_tasks(self) -> None:
        """Delete every row of the task table."""

        def write(conn: Connection) -> None:
            clear_tags(conn, self._tags)
            conn.execute(delete(self._tasks))

        self._write("remove all tasks", write)
        self._broken.clear()

    # -- acting on a tag: one transaction each ---------------------------------------------

    def _tagged_for_write(self, conn: Connection, tag: str) -> list[Task]:
        """The loadable tasks with ``tag``, their rows locked for this transaction: one
        query through the tag index (``id IN (SELECT task_id FROM <table>_tags WHERE
        tag = ?)``). Rows that fail to load are logged and skipped."""
        table, tags = self._tasks, self._tags
        query = select(table.c.id, table.c.state).where(
            table.c.id.in_(select(tags.c.task_id).where(tags.c.tag == tag))
        )
        if self._row_locks:
            query = query.with_for_update()
        return [task for task in self._load(conn.execute(query).all()) if tag in task.tags]

    def _rewrite(self, conn: Connection, tasks: list[Task]) -> None:
        """Write the records and next run times of ``tasks`` (tags unchanged: the index
        stays) with one executemany."""
        if not tasks:
            return
        table = self._tasks
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(next_run_time=bindparam("b_next"), state=bindparam("b_state")),
            [
                {"b_id": row["id"], "b_next": row["next_run_time"], "b_state": row["state"]}
                for row in map(self._row, tasks)
            ],
        )

    def _delete(self, conn: Connection, task_ids: list[str]) -> None:
        """Delete the rows of ``task_ids`` with their tag rows."""
        for chunk in _chunks(task_ids):
            conn.execute(delete(self._tasks).where(self._tasks.c.id.in_(chunk)))
        forget_tags(conn, self._tags, task_ids)

    def _settled(self, written: Iterable[Task], removed: Iterable[Task]) -> None:
        for task in written:
            task.store_alias = self.alias
            self._broken.forget(task.id)
        for task in removed:
            self._broken.forget(task.id)

    def pause_tasks_by_tag(self, tag: str) -> list[Task]:
        """Pause the tasks with ``tag`` in one transaction: one indexed select, one
        executemany update (see :meth:`BaseStore.pause_tasks_by_tag`)."""

        def write(conn: Connection) -> list[Task]:
            paused = [t for t in self._tagged_for_write(conn, tag) if t.next_run_time is not None]
            for task in paused:
                task.next_run_time = None
            self._rewrite(conn, paused)
            return paused

        paused = self._write("pause tasks by tag", write)
        self._settled(paused, ())
        return paused

    def resume_tasks_by_tag(
        self, tag: str, next_run_time: NextRunTime
    ) -> tuple[list[Task], list[Task]]:
        """Resume the paused tasks with ``tag`` in one transaction: one indexed select,
        the next run times computed from the rows read, one executemany update and one
        delete of the finished ones (see :meth:`BaseStore.resume_tasks_by_tag`)."""

        def write(conn: Connection) -> tuple[list[Task], list[Task]]:
            resumed: list[Task] = []
            removed: list[Task] = []
            for task in self._tagged_for_write(conn, tag):
                if task.next_run_time is not None:
                    continue
                when = next_run_time(task)
                if when is None:
                    removed.append(task)
                elif when is not False:
                    task.next_run_time = when
                    resumed.append(task)
            self._rewrite(conn, resumed)
            if removed:
                self._delete(conn, [task.id for task in removed])
            return resumed, removed

        resumed, removed = self._write("resume tasks by tag", write)
        self._settled(resumed, removed)
        return resumed, removed

    def remove_tasks_by_tag(self, tag: str) -> list[Task]:
        """Delete the tasks with ``tag`` in one transaction: one indexed select, one
        delete of the rows and one of their tag rows (per 500 tasks)."""

        def write(conn: Connection) -> list[Task]:
            removed = self._tagged_for_write(conn, tag)
            if removed:
                self._delete(conn, [task.id for task in removed])
            return removed

        removed = self._write("remove tasks by tag", write)
        self._settled((), removed)
        return removed

    def release_tasks(
        self,
        owner: str,
        updated: Iterable[Task],
        removed: Iterable[str],
        runs: Iterable[tuple[Task, datetime]] = (),
        runs_expire: datetime | None = None,
    ) -> Collection[str]:
        """Write a pass's updates and removals and record its runs, in one transaction
        (see :meth:`BaseStore.release_tasks`). Tasks claimed by another owner now are
        left alone; an update of a task deleted meanwhile matches no row, so the task
        stays deleted; a task changed meanwhile keeps the change (see :mod:`._claimed`)."""
        tasks = list(updated)
        rows = [self._row(task) for task in tasks]
        removed = list(removed)
        runs = list(runs)
        table = self._tasks
        claimed = self._claimed
        # Written only where the row still holds the bytes claimed (b_any: not claimed
        # through this object, written as it is).
        guard = or_(bindparam("b_any", type_=Boolean), table.c.state == bindparam("b_was"))

        def guarded(task_id: str) -> dict[str, Any]:
            was = claimed.blob(task_id)
            return {"b_id": task_id, "b_owner": owner, "b_any": was is None, "b_was": was}

        def release_values(rows: list[dict[str, Any]]) -> dict[str, Any]:
            was = [claimed.blob(r["id"]) for r in rows]
            return {
                "b_owner": owner,
                "a_id": BinaryList(r["id"] for r in rows),
                "a_next": BinaryList(r["next_run_time"] for r in rows),
                "a_state": BinaryList(r["state"] for r in rows),
                "a_leader": BinaryList(r["leader_only"] for r in rows),
                "a_any": BinaryList(blob is None for blob in was),
                "a_was": BinaryList(was),
            }

        bulk = self.engine.dialect.name == "postgresql"

        lost: list[tuple[Task, list[str]]] = []  # (tags changed while claimed: logged)
        kept: list[str] = []  # changed while claimed: the change kept (logged)

        def write_back(conn: Connection) -> set[str]:
            lost.clear()  # (a transaction tried again starts afresh)
            kept.clear()
            written_ids: set[str] = set()  # (PostgreSQL: the rows the update wrote)
            if rows and bulk:
                # One statement for the batch (see _sql_bulk); it says which rows it wrote.
                written_ids.update(
                    conn.execute(self._release_bulk_statement(), release_values(rows)).scalars()
                )
            elif rows:
                # One executemany: the driver batches the statements.
                conn.execute(
                    update(table)
                    .where(
                        table.c.id == bindparam("b_id"),
                        self._claimable_by(bindparam("b_owner")),
                        guard,
                    )
                    .values(
                        next_run_time=bindparam("b_next"),
                        state=bindparam("b_state"),
                        leader_only=bindparam("b_leader"),
                        lease_owner=None,
                        lease_expires=None,
                    ),
                    [
                        {
                            **guarded(r["id"]),
                            "b_next": r["next_run_time"],
                            "b_state": r["state"],
                            "b_leader": r["leader_only"],
                        }
                        for r in rows
                    ],
                )
            if removed:
                conn.execute(
                    delete(table).where(
                        table.c.id == bindparam("b_id"),
                        self._claimable_by(bindparam("b_owner")),
                        guard,
                    ),
                    [guarded(task_id) for task_id in removed],
                )
            # A row the update wrote is unclaimed now; the others are looked up.
            owners: dict[str, str | None] = dict.fromkeys(written_ids)
            owners.update(
                self._lease_owners(
                    conn, [r["id"] for r in rows if r["id"] not in written_ids] + removed
                )
            )
            skipped = {i for i, held in owners.items() if held is not None and held != owner}
            # Rows still claimed by this owner were changed since the claim: merged.
            changed = {i for i, held in owners.items() if held == owner}
            merged = self._merge_changed(conn, owner, changed, tasks) if changed else {}
            kept.extend(i for i, task in merged.items() if task is not None)
            gone = [i for i in removed if i not in skipped and i not in changed]
            gone += [i for i, task in merged.items() if task is None]
            if gone:  # (the rows of a task claimed by another owner meanwhile stay)
                forget_tags(conn, self._tags, gone)
            # The index follows the records written (rows that exist and were not left to
            # another owner), also when their tags were changed while claimed.
            written = [
                t for t in tasks if t.id in owners and t.id not in skipped and t.id not in changed
            ]
            lost.extend(self._retag(conn, written))
            if runs:
                expires = runs_expire or datetime.now(UTC) + timedelta(seconds=self.lease_time)
                mine = [(task, when) for task, when in runs if task.id not in skipped]
                skipped |= self._runs.record(conn, owner, mine, blobs_by_id(rows), expires)
            return skipped

        try:
            skipped = self._write("store processed tasks", write_back)
        finally:
            claimed.forget([task.id for task in tasks] + removed)
        for task_id in kept:
            self.logger.info(
                "task %r was changed while scheduler %r held it for its runs; the change is "
                "kept (its next run time moved past the runs made, unless the change set it)",
                task_id,
                owner,
                extra={"task_id": task_id},
            )
        for task, was in lost:
            self.logger.warning(
                "task %r was changed while scheduler %r held it for its runs (its tags were "
                "%s); that scheduler's write-back stored the task as it claimed it, tags and "
                "index included, so the change is lost: make it again",
                task.id,
                owner,
                was,
                extra={"task_id": task.id},
            )
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)
        for task_id in removed:
            self._broken.forget(task_id)
        return skipped

    def _merge_changed(
        self, conn: Connection, owner: str, changed: set[str], tasks: list[Task]
    ) -> dict[str, Task | None]:
        """Store, for each task in ``changed`` (changed by someone else while ``owner``
        held it), what :func:`._claimed.merge_changed` says, and end the claim. Returns
        what was stored per id (``None``: deleted). A row that no longer loads is left as
        it is (it is reported where it is read), its claim ended."""
        table = self._tasks
        advanced = {task.id: task for task in tasks}
        query = select(table.c.id, table.c.state).where(table.c.id.in_(sorted(changed)))
        if self._row_locks:
            query = query.with_for_update()
        mine = (table.c.id == bindparam("b_id")) & (table.c.lease_owner == owner)
        result: dict[str, Task | None] = {}
        for task_id, state in conn.execute(query).all():
            current = self._broken.load(self.serializer, task_id, bytes(state))
            if current is None:
                conn.execute(
                    update(table).where(mine).values(lease_owner=None, lease_expires=None),
                    {"b_id": task_id},
                )
                continue
            was = self._claimed.next_run_time(task_id)
            merged = merge_changed(current, was, advanced.get(task_id))
            result[task_id] = merged
            if merged is None:
                conn.execute(delete(table).where(mine), {"b_id": task_id})
                continue
            row = self._row(merged)
            conn.execute(
                update(table)
                .where(mine)
                .values(
                    next_run_time=row["next_run_time"],
                    state=row["state"],
                    leader_only=row["leader_only"],
                    lease_owner=None,
                    lease_expires=None,
                ),
                {"b_id": task_id},
            )
        return result

    def _release_bulk_statement(self) -> Update:
        """The write-back of a batch's advanced tasks as one statement (PostgreSQL, see
        :mod:`._sql_bulk`), built once."""
        if self._release_bulk is None:
            self._release_bulk = release_statement(self._tasks)
        return self._release_bulk

    def _claimable_by(self, owner: Any) -> Any:
        """Rows not claimed, or claimed by ``owner`` (a value or a bound parameter)."""
        column = self._tasks.c.lease_owner
        return or_(column.is_(None), column == owner)

    def _lease_owners(self, conn: Connection, ids: list[str]) -> dict[str, str | None]:
        """The claim holder (or ``None``) of each of ``ids`` that has a row."""
        table = self._tasks
        owners: dict[str, str | None] = {}
        for chunk in _chunks(ids):
            query = select(table.c.id, table.c.lease_owner).where(table.c.id.in_(chunk))
            owners.update((task_id, held) for task_id, held in conn.execute(query).all())
        return owners

    def _retag(self, conn: Connection, tasks: list[Task]) -> list[tuple[Task, list[str]]]:
        """Make the tag rows of the written-back ``tasks`` say their tags: one select, and
        writes only for tasks whose rows differ. Those had their tags changed by someone
        else while the pass held them; the write-back stored the task as claimed, so the
        change is lost: they are returned with the tags the rows said, to be logged."""
        if not tasks:
            return []
        tags = self._tags
        indexed: dict[str, set[str]] = {}
        dialect = conn.dialect
        for chunk in chunks_for([task.id for task in tasks], dialect, _CHUNK):
            query = select(tags.c.task_id, tags.c.tag).where(ids_in(tags.c.task_id, chunk, dialect))
            for task_id, tag in conn.execute(query).all():
                indexed.setdefault(task_id, set()).add(tag)
        stale = [task for task in tasks if indexed.get(task.id, set()) != task.tags]
        if stale:
            write_tags(conn, tags, stale, replace=True)
        return [(task, sorted(indexed.get(task.id, ()))) for task in stale]

    def _row(self, task: Task) -> dict[str, Any]:
        if len(task.id) > MAX_ID_LENGTH:
            raise InvalidTaskError(
                f"task id {task.id[:40]!r}... has {len(task.id)} characters; the SQL store keeps "
                f"ids of at most {MAX_ID_LENGTH}"
            )
        when = task.next_run_time.timestamp() if task.next_run_time is not None else None
        return {
            "id": task.id,
            "next_run_time": when,
            "state": self.serializer.serialize(task),
            "leader_only": 1 if task.leader_only else 0,
        }

    # -- reads ----------------------------------------------------------------------------

    def _load(self, rows: Iterable[Sequence[Any]], limit: int | None = None) -> list[Task]:
        tasks: list[Task] = []
        for task_id, state in rows:
            task = self._broken.load(self.serializer, task_id, bytes(state))
            if task is not None:
                task.store_alias = self.alias
                tasks.append(task)
                if limit is not None and len(tasks) >= limit:
                    break
        return tasks

    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None`` (also when it cannot be loaded)."""
        table = self._tasks
        query = select(table.c.id, table.c.state).where(table.c.id == task_id)
        loaded = self._load(self._read_rows("look up a task", query))
        return loaded[0] if loaded else None

    def _read_rows(self, action: str, query: Select[Any]) -> list[Any]:
        """The rows of a read-only ``query``. Before :meth:`start` the table may not
        exist yet (a fresh database: ``start`` creates it), and then there are no rows:
        a scheduler lists its pending tasks before it starts, and that must not fail
        with "no such table"."""
        try:
            with self._unavailable(action), self.engine.connect() as conn:
                return list(conn.execute(query).all())
        except (StoreUnavailableError, sa_exc.ProgrammingError):
            # (SQLite reports a missing table as an OperationalError, which
            # _unavailable turns into StoreUnavailableError; PostgreSQL and MySQL as a
            # ProgrammingError.) Asked only before start, and only after a failure.
            if self._schema_ready or self._table_exists() is not False:
                raise
            return []

    def _table_exists(self) -> bool | None:
        """Whether the task table exists; ``None`` when the database cannot say."""
        try:
            with self.engine.connect() as conn:
                return sa_inspect(conn).has_table(self.tablename, schema=self._metadata.schema)
        except sa_exc.SQLAlchemyError:
            return None

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return due tasks, earliest first, with one indexed query."""
        table = self._tasks
        query = (
            select(table.c.id, table.c.state)
            .where(table.c.next_run_time <= now.timestamp())
            .order_by(table.c.next_run_time, table.c.id)
        )
        while True:
            # Rows that fail to load are skipped, so fetch as many more as are known to
            # fail; when new failures show up, ask again with the larger allowance.
            known = len(self._broken)
            batch = query if limit is None else query.limit(limit + known)
            with self._unavailable("query due tasks"), self.engine.connect() as conn:
                rows = conn.execute(batch).all()
            tasks = self._load(rows, limit)
            if limit is None or len(tasks) >= limit or len(self._broken) == known:
                return tasks

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """Claim up to ``limit`` due tasks whose claim is free, expired or ``owner``'s, in
        one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` (rows another scheduler
        is claiming right now are skipped, not waited for), then mark them."""
        table = self._tasks
        moment = now.timestamp()
        claimable = or_(
            table.c.lease_owner.is_(None),
            table.c.lease_expires < moment,
            table.c.lease_owner == owner,
        )
        query = (
            select(table.c.id, table.c.state)
            .where(table.c.next_run_time <= moment, claimable, self._leader_filter(owner))
            .order_by(table.c.next_run_time, table.c.id)
        )
        expires = moment + lease.total_seconds()

        def claim(conn: Connection, batch: Select[Any]) -> list[Task]:
            rows = conn.execute(batch).all()
            tasks = self._load(rows, limit)
            states = {task_id: bytes(state) for task_id, state in rows}
            for task in tasks:
                self._claimed.remember(task.id, states[task.id], task.next_run_time)
            dialect = conn.dialect
            for chunk in chunks_for([task.id for task in tasks], dialect, _CHUNK):
                conn.execute(
                    update(table)
                    .where(ids_in(table.c.id, chunk, dialect))
                    .values(lease_owner=owner, lease_expires=expires)
                )
            return tasks

        while True:
            known = len(self._broken)  # see get_due_tasks
            batch = query.limit(limit + known)
            if self._row_locks:
                batch = batch.with_for_update(skip_locked=True)
            tasks = self._write("claim due tasks", functools.partial(claim, batch=batch))
            if len(tasks) >= limit or len(self._broken) == known:
                return tasks

    # -- leadership -------------------------------------------------------------------------

    def elect(self, owner: str, lease: float) -> int | None:
        """Take or renew ``owner``'s term in the leader table, by the database's clock
        (see :meth:`BaseStore.elect` and :mod:`tickwork.stores._sql_leader`)."""
        term = self._term
        held = term[1] if term is not None and term[0] == owner else None
        generation = self._write(
            "elect a leader",
            lambda conn: self._leader.elect(conn, owner, lease, self._row_locks, held),
        )
        self._term = None if generation is None else (owner, generation)
        return generation

    def resign(self, owner: str) -> None:
        """End ``owner``'s term now (see :meth:`BaseStore.resign`)."""
        self._term = None
        self._write("resign the leadership", lambda conn: self._leader.resign(conn, owner))

    def get_leader(self) -> LeaderTerm | None:
        """The running term, read from the leader table (see :meth:`BaseStore.get_leader`)."""
        with self._unavailable("read the leader"), self.engine.connect() as conn:
            term = self._leader.current(conn)
        return None if term is None else LeaderTerm(*term)

    def _leader_filter(self, owner: str | None) -> Any:
        """The condition on task rows that leaves leader-only tasks out unless this
        instance's term (for ``owner``, when given) is the running one: checked by the
        database in the same statement, so an expired term claims nothing."""
        plain = self._tasks.c.leader_only == 0
        term = self._term
        if term is None or (owner is not None and term[0] != owner):
            return plain
        return or_(plain, self._leader.leads(self.engine.dialect, *term))

    def _take_over_fence(self, owner: str) -> Any:
        """The condition on run records that leaves those of leader-only tasks (abandoned
        runs and pending retries) to the leader: the same check of the term as a claim
        (:meth:`_leader_filter`), in the take-over's own statement."""
        tasks, runs = self._tasks, self._runs.table
        leader_only = exists(
            select(tasks.c.id).where(tasks.c.id == runs.c.task_id, tasks.c.leader_only == 1)
        )
        term = self._term
        if term is None or term[0] != owner:
            return ~leader_only
        return or_(~leader_only, self._leader.leads(self.engine.dialect, *term))

    def count_runs(self, task_ids: Collection[str]) -> dict[str, int]:
        """Runs in progress per task, over every scheduler sharing the table."""
        if not task_ids:
            return {}
        with self._unavailable("count runs in progress"), self.engine.connect() as conn:
            binary_arrays(conn)
            return self._runs.count(conn, task_ids)

    def renew_runs(self, owner: str, runs: Collection[RunKey], expires: datetime) -> int:
        """Extend ``owner``'s run records (see :meth:`BaseStore.renew_runs`)."""
        if not runs:
            return 0
        return self._write(
            "renew runs in progress", lambda conn: self._runs.renew(conn, owner, runs, expires)
        )

    def finish_runs(self, owner: str, runs: Collection[RunKey]) -> None:
        """Delete ``owner``'s records of ended runs."""
        if not runs:
            return
        self._write("record finished runs", lambda conn: self._runs.finish(conn, owner, runs))

    def take_over_runs(
        self, now: datetime, limit: int, owner: str, expires: datetime
    ) -> list[InProgressRun]:
        """Take over expired run records and due pending retries (see
        :meth:`BaseStore.take_over_runs`)."""
        return self._write(
            "take over abandoned runs and due retries",
            lambda conn: self._runs.take_over(
                conn,
                now,
                limit,
                owner,
                expires,
                self._row_locks,
                self.alias,
                self._take_over_fence(owner),
            ),
        )

    def retry_runs(self, owner: str, retries: Collection[PendingRetry]) -> None:
        """Turn ``owner``'s run records into pending retries, in one transaction (see
        :meth:`BaseStore.retry_runs`). A run without a record gets one; a record
        another scheduler holds now is left alone; a record whose cancellation was
        requested is deleted instead (the run is not tried again; logged)."""
        if not retries:
            return
        self._write("record pending retries", lambda conn: self._runs.retry(conn, owner, retries))

    def next_retry_time(self) -> datetime | None:
        """When the earliest pending retry is due (over every scheduler sharing the
        table)."""
        with self._unavailable("query the next retry time"), self.engine.connect() as conn:
            return self._runs.next_retry(conn)

    def cancel_runs(self, task_id: str, run_time: datetime | None = None) -> int:
        """Delete the pending retries of the runs and mark their records in progress, in
        one transaction (see :meth:`BaseStore.cancel_runs`). A record already marked
        is not counted again."""
        return self._write(
            "request cancellation of runs", lambda conn: self._runs.cancel(conn, task_id, run_time)
        )

    def cancel_requests(self, owner: str) -> list[RunKey]:
        """``owner``'s runs in progress whose cancellation was requested (one query)."""
        with self._unavailable("read cancel requests"), self.engine.connect() as conn:
            return self._runs.cancel_requests(conn, owner)

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest time a loadable task needs attention: its next run time,
        or, for a task another scheduler has claimed, when that claim expires (it is
        that one's until then; the others must not wake up in a loop for it).

        Walks the ``next_run_time`` index from the start: claimed tasks are the few due
        ones at its head, so this reads one page of rows in practice."""
        table = self._tasks
        query = (
            select(table.c.next_run_time, table.c.lease_owner, table.c.lease_expires)
            .where(table.c.next_run_time.is_not(None), self._leader_filter(None))
            .order_by(table.c.next_run_time)
        )
        broken = self._broken.ids()
        if broken:
            query = query.where(table.c.id.not_in(broken))
        best: float | None = None
        with self._unavailable("query the next run time"), self.engine.connect() as conn:
            for offset in itertools.count(0, _NEXT_PAGE):
                rows = conn.execute(query.offset(offset).limit(_NEXT_PAGE)).all()
                for when, owner, expires in rows:
                    if best is not None and when >= best:
                        return self._time_of(best)
                    if owner is not None and expires is not None and expires > when:
                        when = expires
                    best = when if best is None else min(best, when)
                if len(rows) < _NEXT_PAGE:
                    break
        return self._time_of(best) if best is not None else None

    def _time_of(self, stamp: float) -> datetime:
        """A ``next_run_time`` column value as a datetime. A value outside datetime's
        range (a row written by hand: -1e300) reads as the earliest or latest time there
        is, so the store goes on: an early one makes the task due, and the pass reads its
        stored state and writes the column back from it."""
        try:
            return datetime.fromtimestamp(stamp, UTC)
        except (OverflowError, OSError, ValueError):
            self.logger.warning(
                "store %r: a next_run_time column holds %r, outside the datetimes there are",
                self.alias,
                stamp,
            )
            return _EARLIEST if not stamp > 0 else _LATEST

    def get_all_tasks(self) -> list[Task]:
        """Return every loadable task, by next run time, paused last."""
        table = self._tasks
        paused_last = case((table.c.next_run_time.is_(None), 1), else_=0)
        query = select(table.c.id, table.c.state).order_by(
            paused_last, table.c.next_run_time, table.c.id
        )
        return self._load(self._read_rows("list tasks", query))

    def get_tasks_by_tag(self, tag: str) -> list[Task]:
        """Return the tasks with ``tag``, by next run time, paused last: one query joined
        with the tag index (see :mod:`tickwork.stores._sql_tags`)."""
        table, tags = self._tasks, self._tags
        paused_last = case((table.c.next_run_time.is_(None), 1), else_=0)
        query = (
            select(table.c.id, table.c.state)
            .join(tags, tags.c.task_id == table.c.id)
            .where(tags.c.tag == tag)
            .order_by(paused_last, table.c.next_run_time, table.c.id)
        )
        return [t for t in self._load(self._read_rows("list tasks by tag", query)) if tag in t.tags]

    def get_task_page(
        self, search: str = "", paused: bool | None = None, offset: int = 0, limit: int = 50
    ) -> tuple[list[Task], int]:
        """One page of tasks, asked of the database (a count and a LIMIT query): only
        the page's tasks are loaded."""
        from tickwork.stores._task_page import check_page, sql_task_page

        check_page(search, paused, offset, limit)
        binary_ids = self.engine.dialect.name in MYSQL
        return sql_task_page(
            self._tasks, self._read_rows, self._load, search, paused, offset, limit, binary_ids
        )

    def __repr__(self) -> str:
        where = self.engine.url.render_as_string(hide_password=True)
        return f"<SQLAlchemyStore alias={self.alias!r} url={where!r} table={self.tablename!r}>"


#: What to install when SQLAlchemy's dialect cannot import its driver, by the module.
_DRIVER_INSTALL = {
    "psycopg": "pip install 'tickwork[postgres]'",
    "psycopg2": (
        "pip install psycopg2-binary, or use a postgresql+psycopg:// URL and "
        "pip install 'tickwork[postgres]'"
    ),
    "pymysql": "pip install 'tickwork[mysql]'",
    "MySQLdb": (
        "pip install mysqlclient, or use a mysql+pymysql:// URL and pip install 'tickwork[mysql]'"
    ),
}


def _missing_driver(url: str | URL | None, exc: ModuleNotFoundError) -> MissingDependencyError:
    """The error for a URL whose database driver is not installed, naming the module and
    what to install (the extra of tickwork's own drivers)."""
    module = (exc.name or str(exc)).partition(".")[0]
    where = make_url(url if url is not None else DEFAULT_URL)
    install = _DRIVER_INSTALL.get(module, f"pip install {module}")
    return MissingDependencyError(module, f"SQLAlchemyStore ({where.drivername}:// URL)", install)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _create_sqlite_file(engine: Engine) -> None:
    """Create a new SQLite database file private (0o600): the driver would create it
    0o644, readable with every task's arguments by any local user."""
    database = engine.url.database
    # (A "file:" URI's path is the driver's business.)
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    if not database.startswith("file:"):
        create_private_file(database)
