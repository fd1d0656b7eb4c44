"""A fresh location in each kind of store the command administers, and a worker
scheduler (a fleet member in the test process) running on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url


class StoreLocation:
    """A store's URL, the options that pick this test's table or key prefix, and the
    same as command-line arguments."""

    def __init__(self, url: str, options: dict[str, str]) -> None:
        self.url = url
        self.options = options
        self.args = ["--store", url]
        for name, flag in (("tablename", "--table"), ("prefix", "--prefix")):
            if name in options:
                self.args += [flag, options[name]]

    def worker(self) -> BackgroundScheduler:
        """A scheduler on the store, not yet started."""
        return BackgroundScheduler(
            stores={"default": store_from_url(self.url, **self.options)}, identity="cli-worker"
        )


@pytest.fixture(
    params=[
        "file",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
        pytest.param("redis", marks=pytest.mark.external_service("redis")),
    ]
)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreLocation]:
    kind = request.param
    if kind == "file":
        yield StoreLocation(str(tmp_path / "tasks"), {})
    elif kind == "sqlite":
        yield StoreLocation(f"sqlite:///{tmp_path / 'tasks.db'}", {})
    elif kind == "postgresql":
        with servers.temporary_database("postgresql") as url:
            yield StoreLocation(url, {"tablename": f"cli_{uuid.uuid4().hex[:8]}"})
    else:
        with servers.redis_prefix() as prefix:
            yield StoreLocation(servers.redis_url(), {"prefix": f"{prefix}cli_"})


@pytest.fixture
def sqlite_location(tmp_path: Path) -> StoreLocation:
    return StoreLocation(f"sqlite:///{tmp_path / 'tasks.db'}", {})
