"""DateTrigger fires once; ShutdownTrigger never fires on the clock."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta

import pytest

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import DateTrigger, ShutdownTrigger

UTC = UTC
T0 = datetime(2026, 5, 1, 8, tzinfo=UTC)


def test_fires_once_at_run_at() -> None:
    trigger = DateTrigger(T0)
    assert trigger.get_next_trigger_time(UTC, None, T0 - timedelta(days=1)) == T0
    assert trigger.get_next_trigger_time(UTC, T0, T0) is None


def test_without_run_at_fires_now_and_keeps_that_answer() -> None:
    trigger = DateTrigger()
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0
    assert trigger.get_next_trigger_time(UTC, None, T0 + timedelta(hours=1)) == T0


def test_accepts_run_date_strings_and_dates() -> None:
    assert DateTrigger(run_date=T0).run_at == T0
    assert DateTrigger("2026-05-01T08:00:00+00:00").run_at == T0
    as_date = DateTrigger(date(2026, 5, 1), timezone="UTC").run_at
    assert as_date == datetime(2026, 5, 1, tzinfo=UTC)


def test_round_trip_and_repr() -> None:
    trigger = DateTrigger(T0)
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert "2026-05-01T08:00:00+00:00" in repr(trigger)


def test_shutdown_trigger_never_fires_on_the_clock() -> None:
    trigger = ShutdownTrigger()
    assert trigger.get_next_trigger_time(UTC, None, T0) is None
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert repr(trigger) == "ShutdownTrigger()"


def test_run_at_and_run_date_together_are_refused() -> None:
    with pytest.raises(InvalidTriggerError, match=r"run_at.*run_date.*not both"):
        DateTrigger(T0, run_date=T0 + timedelta(hours=1))
