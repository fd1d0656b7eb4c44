"""Fixtures of the command's tests: a fresh location in each kind of store it administers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from cli_stores import StoreLocation


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
