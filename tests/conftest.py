"""Fixtures shared by the whole suite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickwork.clock import FakeClock


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock at 2026-01-01 00:00 UTC that moves only when the test says so."""
    return FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
