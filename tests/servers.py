"""The real servers tests run against, and what happens when one is missing.

Each ``*_url()`` function returns the URL of a reachable server. When the server cannot
be reached the calling test is skipped with the reason, except under ``CI=true``, where
a missing server is a failure: CI must never go green by skipping.

Defaults are the servers of the development machines; ``TICKWORK_TEST_POSTGRES_URL``,
``TICKWORK_TEST_MARIADB_URL`` and ``TICKWORK_TEST_REDIS_URL`` point elsewhere.

Tests never use the shared databases directly: :func:`temporary_database` creates a
``tickwork_test_<random>`` database and drops it afterwards, and :func:`redis_prefix`
hands out a random key prefix whose keys are deleted afterwards. :func:`free_port` hands
out TCP ports for servers a test starts, from a range of the pytest-xdist worker's own.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import socket
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

__all__ = [
    "free_port",
    "mariadb_url",
    "postgres_url",
    "rabbitmq_url",
    "redis_prefix",
    "redis_url",
    "server_missing",
    "temporary_database",
]

_DEFAULTS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
_ENV = {
    "postgresql": "TICKWORK_TEST_POSTGRES_URL",
    "mariadb": "TICKWORK_TEST_MARIADB_URL",
    "redis": "TICKWORK_TEST_REDIS_URL",
    "rabbitmq": "TICKWORK_TEST_RABBITMQ_URL",
}


def _configured_url(name: str) -> str:
    return os.environ.get(_ENV[name]) or _DEFAULTS[name]


def server_missing(name: str, reason: str) -> NoReturn:
    """Skip the test (fail it under ``CI=true``) because server ``name`` is unusable."""
    message = f"{name} server not available ({reason}); set {_ENV[name]} to use another one"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the {message}", pytrace=False)
    pytest.skip(message)


@functools.cache
def _probe(name: str) -> str | None:
    """Return why server ``name`` cannot be used, or ``None`` when it answers."""
    url = _configured_url(name)
    try:
        if name == "rabbitmq":
            import kombu

            with kombu.Connection(url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
            return None
        if name == "redis":
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
            return None
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": 2}
        )
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure means "not usable here"; the reason is shown
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _url(name: str) -> str:
    reason = _probe(name)
    if reason is not None:
        server_missing(name, reason)
    return _configured_url(name)


def postgres_url() -> str:
    """The SQLAlchemy URL of the PostgreSQL test server (its shared ``test`` database)."""
    return _url("postgresql")


def mariadb_url() -> str:
    """The SQLAlchemy URL of the MariaDB / MySQL test server (its shared ``test`` database)."""
    return _url("mariadb")


def rabbitmq_url() -> str:
    """The AMQP URL of the RabbitMQ test server."""
    return _url("rabbitmq")


def redis_url() -> str:
    """The URL of the Redis test server."""
    return _url("redis")


@contextlib.contextmanager
def temporary_database(name: str) -> Iterator[str]:
    """Create a fresh ``tickwork_test_<random>`` database on server ``name``
    (``"postgresql"`` or ``"mariadb"``), yield its URL, and drop it afterwards."""
    import sqlalchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    server = make_url(_url(name))
    database = f"tickwork_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if name == "postgresql":
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
            else:
                conn.execute(sqlalchemy.text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if name == "postgresql":
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            else:
                conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS `{database}`"))
        admin.dispose()


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """Yield a random key prefix ``tickwork_test_<random>`` on the Redis test server and
    delete every key under it afterwards."""
    import redis

    url = redis_url()
    prefix = f"tickwork_test_{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


# Each pytest-xdist worker (PYTEST_XDIST_WORKER "gw0", "gw1", ...; none without xdist) takes
# ports from a block of its own below Linux's ephemeral range (32768-60999), so two workers
# never hand out the same port and no outgoing connection takes one between the check and the
# server's bind. It walks its block from a random start so that two test sessions on one
# machine rarely meet.
_PORT_BLOCK = 1000
_PORT_BASE = 20000
_port_offsets = itertools.count(random.randrange(_PORT_BLOCK))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, for a server the test starts."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = _PORT_BASE + (int(worker) if worker.isdigit() else 0) % 12 * _PORT_BLOCK
    for _ in range(_PORT_BLOCK):
        port = base + next(_port_offsets) % _PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + _PORT_BLOCK - 1}")
