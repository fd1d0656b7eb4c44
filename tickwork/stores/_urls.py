"""A store from one string: what the ``tickwork`` command and the admin app take as
``--store URL``, so a process that only administers a fleet's store needs no code.

* ``redis://…`` / ``rediss://…`` / ``unix://…`` → :class:`~tickwork.stores.redis.RedisStore`
  (``prefix=`` picks the key prefix);
* any other ``scheme://`` (``sqlite:///tasks.db``, ``postgresql+psycopg://…``,
  ``mysql+pymysql://…``) → :class:`~tickwork.stores.sqlalchemy.SQLAlchemyStore`
  (``tablename=`` picks the table);
* ``file:///path`` or a plain path → :class:`~tickwork.stores.file.FileStore`.

A memory store is refused: nothing outside its process can see it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tickwork.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tickwork.stores.base import BaseStore

__all__ = ["store_from_url"]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def store_from_url(
    url: str, *, tablename: str | None = None, prefix: str | None = None, **options: Any
) -> BaseStore:
    """The store ``url`` names (see the module docstring), built with ``options`` (the
    store class's own keywords, e.g. ``io_timeout``). ``tablename`` applies to SQL
    stores only, ``prefix`` to Redis only; giving one to the other kind of store is an
    error rather than silently ignored."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"a store URL must be a non-empty string, got {url!r} (e.g. "
            "'sqlite:///tasks.db', 'postgresql+psycopg://host/db', 'redis://127.0.0.1:6379/0' "
            "or a directory for a file store)"
        )
    url = url.strip()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "memory":
        raise ConfigurationError(
            f"store URL {url!r}: a memory store lives in one process, so nothing else can "
            "administer it; use the scheduler's own admin app or a persistent store"
        )
    if scheme in _REDIS_SCHEMES:
        _refuse(url, "tablename", tablename, "SQL")
        from tickwork.stores.redis import RedisStore

        if prefix is not None:
            options["prefix"] = prefix
        return RedisStore(url=url, **options)
    _refuse(url, "prefix", prefix, "Redis")
    if scheme in ("", "file"):
        _refuse(url, "tablename", tablename, "SQL")
        from tickwork.stores.file import FileStore

        path = unquote(urlsplit(url).path) if scheme == "file" else url
        return FileStore(Path(path).expanduser(), **options)
    from tickwork.stores.sqlalchemy import SQLAlchemyStore

    if tablename is not None:
        options["tablename"] = tablename
    return SQLAlchemyStore(url=url, **options)


def _refuse(url: str, name: str, value: str | None, kind: str) -> None:
    if value is not None:
        raise ConfigurationError(f"{name}={value!r} applies to {kind} stores, not to {url!r}")
