"""A fresh location in each kind of store that can be named by a URL (file, SQLite,
PostgreSQL, Redis): what the tests of the surfaces that take ``--store URL`` / a store
URL (the admin module, the web app, the command) run against."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers

#: The kinds, as fixture params (the servers' kinds marked as needing them).
STORE_KINDS = [
    "file",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("redis", marks=pytest.mark.external_service("redis")),
]


@contextlib.contextmanager
def store_location(kind: str, directory: Path, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The URL of a fresh location of ``kind`` and the store option (table name or key
    prefix, starting ``name``) that keeps it apart; removed afterwards."""
    if kind == "file":
        yield str(directory / "tasks"), {}
    elif kind == "sqlite":
        yield f"sqlite:///{directory / 'tasks.db'}", {}
    elif kind == "postgresql":
        with servers.temporary_database("postgresql") as url:
            yield url, {"tablename": f"{name}_{uuid.uuid4().hex[:8]}"}
    elif kind == "redis":
        with servers.redis_prefix() as prefix:
            yield servers.redis_url(), {"prefix": f"{prefix}{name}_"}
    else:
        raise ValueError(f"no store location of kind {kind!r}")
