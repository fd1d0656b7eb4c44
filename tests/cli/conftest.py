"""Fixtures of the command's tests: a fresh location in each kind of store it administers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_stores import StoreLocation
from store_locations import STORE_KINDS, store_location


@pytest.fixture(params=STORE_KINDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreLocation]:
    with store_location(request.param, tmp_path, "cli") as (url, options):
        yield StoreLocation(url, options)


@pytest.fixture
def sqlite_location(tmp_path: Path) -> StoreLocation:
    return StoreLocation(f"sqlite:///{tmp_path / 'tasks.db'}", {})
