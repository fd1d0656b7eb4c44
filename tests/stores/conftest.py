"""Store fixtures: one parametrised ``store`` for every backend.

A new backend is one more entry in ``BACKENDS`` and one more branch in
:func:`_factory`. ``make_store`` builds any number of store objects on the *same*
location (directory, table, key prefix), which is how persistence is tested.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from storetest_support import StoreMaker

from tickwork.stores import BaseStore, MemoryStore
from tickwork.stores.file import FileStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

PERSISTENT = [
    pytest.param("file", id="file"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.external_service("mariadb")),
    pytest.param("redis", id="redis", marks=pytest.mark.external_service("redis")),
]
BACKENDS = [pytest.param("memory", id="memory"), *PERSISTENT]
SQL = [p for p in PERSISTENT if p.values[0] in ("sqlite", "postgresql", "mariadb")]
SQL_SERVERS = [p for p in SQL if p.values[0] != "sqlite"]
#: The backends several schedulers can share (leases): SQL and Redis.
SHARED = [*SQL, *(p for p in PERSISTENT if p.values[0] == "redis")]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own for this test session."""
    with servers.temporary_database("postgresql") as url:
        yield url


@pytest.fixture(scope="session")
def mariadb_database() -> Iterator[str]:
    """A MariaDB database of its own for this test session."""
    with servers.temporary_database("mariadb") as url:
        yield url


def _factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Any]:
    """Yield a function making store objects of ``kind`` on one fresh location."""
    table = f"tasks_{uuid.uuid4().hex[:10]}"
    if kind == "memory":
        shared = MemoryStore()  # "the same location" for memory is the same object
        yield lambda **options: shared
    elif kind == "file":
        yield lambda **options: FileStore(tmp_path / "tasks", **options)
    elif kind == "sqlite":
        yield lambda **options: SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.sqlite'}", **options)
    elif kind in ("postgresql", "mariadb"):
        url = request.getfixturevalue(f"{'postgres' if kind == 'postgresql' else kind}_database")
        yield lambda **options: SQLAlchemyStore(url, tablename=table, **options)
    elif kind == "redis":
        url = servers.redis_url()
        with servers.redis_prefix() as prefix:
            yield lambda **options: RedisStore(url, prefix=prefix, **options)
    else:  # pragma: no cover - a typo in BACKENDS
        raise ValueError(kind)


def _maker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    kind: str = request.param
    factories = _factory(kind, request, tmp_path)
    maker = StoreMaker(kind, next(factories))
    try:
        yield maker
    finally:
        maker.close()
        factories.close()


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes started stores of every backend (memory included)."""
    yield from _maker(request, tmp_path)


@pytest.fixture(params=PERSISTENT)
def make_persistent_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes started stores of every backend that keeps tasks outside the process."""
    yield from _maker(request, tmp_path)


@pytest.fixture(params=SQL)
def make_sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes started SQLAlchemy stores on SQLite, PostgreSQL and MariaDB."""
    yield from _maker(request, tmp_path)


@pytest.fixture(params=SQL_SERVERS)
def make_sql_server_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes started SQLAlchemy stores on the PostgreSQL and MariaDB servers."""
    yield from _maker(request, tmp_path)


@pytest.fixture(params=SHARED)
def make_shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes started stores of the backends several schedulers can share."""
    yield from _maker(request, tmp_path)


@pytest.fixture
def store(make_store: StoreMaker) -> BaseStore:
    """A started store (alias ``"default"``) of each backend."""
    return make_store()
