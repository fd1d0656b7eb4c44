"""The SQL store's tables, their schema version, and the engines it creates.

See :mod:`tickwork.stores.sqlalchemy` for the schema; the runs table is
:mod:`tickwork.stores._sql_runs`'s.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import (
    Column,
    Double,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from tickwork.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_URL",
    "MAX_ID_LENGTH",
    "MYSQL",
    "SCHEMA_VERSION",
    "TaskId",
    "create_engine_for",
    "create_schema",
    "meta_table",
    "tasks_table",
]

DEFAULT_URL = "sqlite:///tickwork.sqlite"
#: The schema this tickwork writes; ``<tablename>_meta`` records the one a table follows.
SCHEMA_VERSION = 2
#: 191 characters * 4 bytes fit MySQL's 767-byte index key limit for utf8mb4.
MAX_ID_LENGTH = 191
MYSQL = ("mysql", "mariadb")


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


def create_schema(engine: Engine, metadata: MetaData, meta: Table, tablename: str) -> None:
    """Create the tables if missing, and record the schema version or check it (an older
    one is upgraded, a newer one refused)."""
    # Two processes starting at once may both try CREATE TABLE; the loser's error
    # (which differs per backend) is harmless once the table exists.
    for attempt in range(3):
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError):
            if attempt == 2:
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
        with engine.begin() as conn:
            conn.execute(
                update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
            )
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"table {tablename!r} follows tickwork schema version {version}, newer than "
            f"this tickwork's ({SCHEMA_VERSION}); upgrade tickwork"
        )


def _schema_version(engine: Engine, meta: Table) -> str | None:
    query = select(meta.c.value).where(meta.c.key == "schema_version")
    with engine.connect() as conn:
        found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def create_engine_for(url: str | URL | None, options: dict[str, Any] | None) -> Engine:
    """The engine a store creates for ``url`` (see the SQL store's module docstring)."""
    parsed = make_url(url if url is not None else DEFAULT_URL)
    settings: dict[str, Any] = {"pool_pre_ping": True, **(options or {})}
    if parsed.get_backend_name() in MYSQL:
        # InnoDB's default, REPEATABLE READ, locks the gaps of the index ranges a claim
        # scans, which deadlocks schedulers claiming and writing back the same range;
        # READ COMMITTED locks the rows only (PostgreSQL's default level anyway).
        settings.setdefault("isolation_level", "READ COMMITTED")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, **settings)
    connect_args = settings.setdefault("connect_args", {})
    if parsed.database in (None, "", ":memory:"):
        # One shared connection: each new one would be a new, empty database.
        settings.setdefault("poolclass", StaticPool)
        connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    engine = create_engine(parsed, **settings)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()
