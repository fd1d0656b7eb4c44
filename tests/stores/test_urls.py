"""store_from_url: one string names a store, for processes that only administer one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickwork.exceptions import ConfigurationError
from tickwork.stores import store_from_url
from tickwork.stores.file import FileStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore


def test_sql_urls_make_sqlalchemy_stores(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 'x.db'}", tablename="jobs")
    assert isinstance(store, SQLAlchemyStore)
    assert store.tablename == "jobs"
    store.shutdown()


def test_redis_urls_make_redis_stores() -> None:
    store = store_from_url("redis://127.0.0.1:6379/9", prefix="mine")
    assert isinstance(store, RedisStore)
    assert store.prefix == "mine"
    store.shutdown()


@pytest.mark.parametrize("form", ["plain", "file-url"])
def test_paths_make_file_stores(tmp_path: Path, form: str) -> None:
    url = str(tmp_path / "tasks") if form == "plain" else f"file://{tmp_path / 'tasks'}"
    store = store_from_url(url)
    assert isinstance(store, FileStore)
    assert store.directory == tmp_path / "tasks"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("", {}, "non-empty string"),
        ("memory://", {}, "memory store lives in one process"),
        ("redis://127.0.0.1:6379/0", {"tablename": "t"}, "tablename='t' applies to SQL"),
        ("sqlite:///x.db", {"prefix": "p"}, "prefix='p' applies to Redis"),
        ("/tmp/tasks", {"tablename": "t"}, "applies to SQL stores, not to '/tmp/tasks'"),
    ],
)
def test_bad_urls_are_named(url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store_from_url(url, **options)
