"""The SQL store's tables, their schema version, the engines it creates, and the I/O
bounds it puts on every connection.

See :mod:`tickwork.stores.sqlalchemy` for the schema; the runs table is
:mod:`tickwork.stores._sql_runs`'s.

I/O bounds (``io_timeout``, seconds): without them, a table lock held by another
connection, or a server that stopped answering, made a store call hang for as long as
that lasted (8 s of a PostgreSQL ``ACCESS EXCLUSIVE`` lock in production). Two layers:

* Session settings, run once on each connection the engine hands out
  (:class:`SessionBounds`, also on an engine the user passes in): PostgreSQL
  ``lock_timeout`` and ``statement_timeout``; MariaDB / MySQL
  ``innodb_lock_wait_timeout`` and ``lock_wait_timeout`` (whole seconds, at least 1)
  plus MariaDB's ``max_statement_time`` (MySQL: ``max_execution_time``, which bounds
  SELECTs only); SQLite ``PRAGMA busy_timeout``. The server itself then stops a
  statement that waits or runs too long, with an error that leaves the connection
  usable.
* Driver options, on engines the store creates (:func:`create_engine_for`): the connect
  timeout (psycopg / psycopg2 ``connect_timeout``, whole seconds and at least 2: libpq's
  rule; PyMySQL ``connect_timeout``; sqlite3 ``timeout``), PyMySQL's socket
  ``read_timeout`` / ``write_timeout`` (a server or network that does not answer at
  all; one second longer than the server's own bounds, so that a living server's clearer
  error comes first), and the pool's checkout ``pool_timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

from sqlalchemy import (
    Column,
    Double,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

from tickwork.exceptions import ConfigurationError
from tickwork.stores._sql_conflicts import is_timeout

__all__ = [
    "DEFAULT_IO_TIMEOUT",
    "DEFAULT_URL",
    "MAX_ID_LENGTH",
    "MYSQL",
    "SCHEMA_VERSION",
    "SessionBounds",
    "TaskId",
    "add_missing_columns",
    "check_io_timeout",
    "create_engine_for",
    "create_schema",
    "meta_table",
    "session_statements",
    "tasks_table",
]

DEFAULT_URL = "sqlite:///tickwork.sqlite"
#: The schema this tickwork writes; ``<tablename>_meta`` records the one a table follows.
#: 2 added the runs table and the lease columns, 3 the runs' ``attempt`` and ``cancel``,
#: 4 the tasks' ``leader_only`` column and the ``<tablename>_leader`` table, 5 the tag
#: index ``<tablename>_tags`` (tickwork/stores/_sql_tags.py).
SCHEMA_VERSION = 5
#: 191 characters * 4 bytes fit MySQL's 767-byte index key limit for utf8mb4.
MAX_ID_LENGTH = 191
MYSQL = ("mysql", "mariadb")
#: Seconds a store call may wait for a lock, a statement or the server (``io_timeout``).
DEFAULT_IO_TIMEOUT = 5.0
# How much longer than the server's own bounds a driver's socket waits for an answer.
_SOCKET_GRACE = 1.0
# Where a connection records the io_timeout its session settings follow.
_APPLIED = "tickwork_io_timeout"


class TaskId(TypeDecorator[str]):
    """A task id column: VARCHAR(191), except VARBINARY on MySQL.

    MySQL string collations ignore case or trailing spaces (``'a' = 'A '`` under many of
    them), which would make distinct task ids collide; bytes compare exactly.
    """

    impl = String(MAX_ID_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(MAX_ID_LENGTH * 4))
        return dialect.type_descriptor(String(MAX_ID_LENGTH))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in MYSQL:
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


def tasks_table(metadata: MetaData, tablename: str) -> Table:
    """The task table, ``<tablename>``, in ``metadata``."""
    return Table(
        tablename,
        metadata,
        Column("id", TaskId(), primary_key=True),
        Column("next_run_time", Double(), nullable=True),
        Column("state", LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL), nullable=False),
        Column("lease_owner", String(MAX_ID_LENGTH), nullable=True),
        Column("lease_expires", Double(), nullable=True),
        # 1 for a leader-only task: claimed only by the leader (tickwork/stores/_sql_leader.py).
        Column("leader_only", SmallInteger(), nullable=False, server_default="0"),
        Index(f"ix_{tablename}_next_run_time", "next_run_time"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


def meta_table(metadata: MetaData, tablename: str) -> Table:
    """The key/value table ``<tablename>_meta`` (it records the schema version)."""
    return Table(
        f"{tablename}_meta",
        metadata,
        Column("key", String(64), primary_key=True),
        Column("value", String(255), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


def create_schema(
    engine: Engine,
    metadata: MetaData,
    meta: Table,
    tablename: str,
    logger: logging.Logger | None = None,
) -> None:
    """Create the tables if missing, and record the schema version or check it (an older
    one is upgraded in place, never dropped; a newer one refused)."""
    # Two processes starting at once may both try CREATE TABLE; the loser's error
    # (which differs per backend) is harmless once the table exists. A timeout is no such
    # race: trying again would wait out the bound again (three times in all).
    for attempt in range(3):
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
            if attempt == 2 or is_timeout(exc):
                raise
    found = _schema_version(engine, meta)
    if found is None:
        # A concurrent start() may record it first; its row is as good as ours.
        with contextlib.suppress(sa_exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        found = _schema_version(engine, meta) or str(SCHEMA_VERSION)
    version = int(found)
    if version < SCHEMA_VERSION:
        # 1 -> 2: the runs table (just created) and leases; the data is unchanged.
        # 2 -> 3: the runs table gains ``attempt`` and ``cancel`` (with server defaults:
        # its rows are first attempts, not cancelled).
        # 3 -> 4: the tasks gain ``leader_only`` (default 0: none is), and the leader
        # table is new (created above). The columns go in before the version is
        # recorded, so an upgrade cut short is done again by the next start.
        # 4 -> 5: the tag index is new (created above) and starts empty: no record
        # written before version 5 has tags.
        for table in metadata.sorted_tables:
            add_missing_columns(engine, table, logger or logging.getLogger(__name__))
        with engine.begin() as conn:
            conn.execute(
                update(meta)
                .where(meta.c.key == "schema_version", meta.c.value == found)
                .values(value=str(SCHEMA_VERSION))
            )
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"table {tablename!r} follows tickwork schema version {version}, newer than "
            f"this tickwork's ({SCHEMA_VERSION}); upgrade tickwork"
        )


def add_missing_columns(engine: Engine, table: Table, logger: logging.Logger) -> None:
    """``ALTER TABLE ... ADD COLUMN`` each column of ``table`` that the database's table
    lacks (columns a later schema version added: nullable, or with a server default, so
    the rows already there stay valid). Safe when several processes do it at once."""
    dialect = engine.dialect
    where = dialect.identifier_preparer.format_table(table)
    for attempt in range(3):
        with engine.connect() as conn:
            present = {
                column["name"] for column in inspect(conn).get_columns(table.name, table.schema)
            }
        missing = [column for column in table.columns if column.name not in present]
        if not missing:
            return
        try:
            for column in missing:
                definition = CreateColumn(column).compile(dialect=dialect)
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE {where} ADD COLUMN {definition}")
                logger.info("table %s: added column %r (schema upgrade)", where, column.name)
        except (sa_exc.ProgrammingError, sa_exc.OperationalError) as exc:
            # Another process added it first (each backend words that differently):
            # look again; only a column still missing after that is an error.
            if attempt == 2 or is_timeout(exc):
                raise


def _schema_version(engine: Engine, meta: Table) -> str | None:
    query = select(meta.c.value).where(meta.c.key == "schema_version")
    with engine.connect() as conn:
        found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def check_io_timeout(value: object) -> float:
    """``value`` as a number of seconds for ``io_timeout``: a positive finite number, else
    :class:`~tickwork.exceptions.ConfigurationError` naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"io_timeout must be a positive finite number of seconds, got {value!r}"
        )
    return float(value)


def create_engine_for(
    url: str | URL | None, options: dict[str, Any] | None, io_timeout: float
) -> Engine:
    """The engine a store creates for ``url`` (see the SQL store's module docstring), with
    the driver's timeouts derived from ``io_timeout`` unless ``options`` set them."""
    parsed = make_url(url if url is not None else DEFAULT_URL)
    settings: dict[str, Any] = {"pool_pre_ping": True, **(options or {})}
    # A copy: the caller's engine_options stay as given.
    connect_args = settings["connect_args"] = dict(settings.get("connect_args") or {})
    for name, value in _driver_timeouts(parsed, io_timeout).items():
        connect_args.setdefault(name, value)
    if parsed.get_backend_name() in MYSQL:
        # InnoDB's default, REPEATABLE READ, locks the gaps of the index ranges a claim
        # scans, which deadlocks schedulers claiming and writing back the same range;
        # READ COMMITTED locks the rows only (PostgreSQL's default level anyway).
        settings.setdefault("isolation_level", "READ COMMITTED")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One shared connection: each new one would be a new, empty database.
        settings.setdefault("poolclass", StaticPool)
        connect_args.setdefault("check_same_thread", False)
    if "poolclass" not in settings:
        # Waiting for a free pooled connection is I/O waiting too (default: 30 s).
        settings.setdefault("pool_timeout", io_timeout)
    engine = create_engine(parsed, **settings)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _driver_timeouts(url: URL, io_timeout: float) -> dict[str, Any]:
    """The connect arguments that bound connecting and socket I/O, for the drivers that
    have them (others get the session settings of :class:`SessionBounds` only)."""
    driver = url.get_driver_name()
    backend = url.get_backend_name()
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        return {"connect_timeout": max(2, _whole_seconds(io_timeout))}
    if backend in MYSQL and driver == "pymysql":
        socket = _whole_seconds(io_timeout) + _SOCKET_GRACE
        return {"connect_timeout": io_timeout, "read_timeout": socket, "write_timeout": socket}
    if backend == "sqlite" and driver == "pysqlite":
        return {"timeout": io_timeout}
    return {}


def _whole_seconds(seconds: float) -> int:
    """``seconds`` rounded up to a whole number, at least 1 (settings in whole seconds)."""
    return max(1, math.ceil(seconds))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def session_statements(dialect: Dialect, io_timeout: float) -> list[str]:
    """The statements that put ``io_timeout`` into a connection's session settings."""
    millis = max(1, math.ceil(io_timeout * 1000))
    if dialect.name == "postgresql":
        # set_config() is one ordinary statement on every driver (no multi-statement
        # strings); "false": for the session, not just the current transaction.
        return [
            f"SELECT set_config('lock_timeout', '{millis}ms', false), "
            f"set_config('statement_timeout', '{millis}ms', false)"
        ]
    if dialect.name in MYSQL:
        seconds = _whole_seconds(io_timeout)
        if getattr(dialect, "is_mariadb", False):
            statement_bound = f"max_statement_time = {io_timeout!r}"
        else:
            statement_bound = f"max_execution_time = {millis}"
        return [
            f"SET SESSION innodb_lock_wait_timeout = {seconds}, "
            f"lock_wait_timeout = {seconds}, {statement_bound}"
        ]
    if dialect.name == "sqlite":
        return [f"PRAGMA busy_timeout = {millis}"]
    return []


class SessionBounds:
    """Puts ``io_timeout`` into the session settings of every connection ``engine`` hands
    out (:func:`session_statements`), once per connection: a ``checkout`` listener that
    marks the connection, so a pooled connection costs nothing after its first use.

    A ``checkout`` listener rather than a ``connect`` one: an engine the user passes in
    may already hold pooled connections, which never connect again.
    """

    def __init__(self, engine: Engine, io_timeout: float) -> None:
        self.engine = engine
        self.io_timeout = io_timeout

    def attach(self) -> None:
        """Start applying the settings (idempotent)."""
        if not event.contains(self.engine, "checkout", self._on_checkout):
            event.listen(self.engine, "checkout", self._on_checkout)

    def detach(self) -> None:
        """Stop applying them; connections keep the settings they already have."""
        if event.contains(self.engine, "checkout", self._on_checkout):
            event.remove(self.engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get(_APPLIED) == self.io_timeout:
            return
        cursor = dbapi_connection.cursor()
        try:
            for statement in session_statements(self.engine.dialect, self.io_timeout):
                cursor.execute(statement)
        finally:
            cursor.close()
        # PostgreSQL's SET is transactional: without the commit, the rollback the pool
        # does when the connection is returned would undo it.
        dbapi_connection.commit()
        record.info[_APPLIED] = self.io_timeout
