"""Stores order and compare next run times by instant, also in the repeated hour of a DST
change, where two datetimes in the same zone can show the same (or an earlier) wall time
for a later instant. Python compares datetimes that share a tzinfo by wall time and
ignores ``fold``, so a store that keys on such datetimes gets this wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from storetest_funcs import make_task

from tickwork.stores import BaseStore

NEW_YORK = ZoneInfo("America/New_York")
# 2026-11-01: 01:00-02:00 happens twice in New York (EDT, then EST).
FIRST_0130 = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)  # 05:30 UTC
SECOND_0115 = datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=NEW_YORK)  # 06:15 UTC
SECOND_0130 = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # 06:30 UTC


def instant(moment: datetime | None) -> float:
    """Compare instants: PEP 495 makes an ambiguous local time unequal to every datetime
    of another zone, even the same instant in UTC."""
    assert moment is not None
    return moment.timestamp()


def test_repeated_hour_is_ordered_by_instant(store: BaseStore) -> None:
    store.add_task(make_task("later-but-earlier-wall-time", SECOND_0115))
    store.add_task(make_task("first", FIRST_0130))
    assert instant(store.get_next_run_time()) == instant(FIRST_0130)
    at_0545_utc = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)
    assert [t.id for t in store.get_due_tasks(at_0545_utc)] == ["first"]
    assert [t.id for t in store.get_all_tasks()] == ["first", "later-but-earlier-wall-time"]


def test_moving_a_task_to_the_second_pass_of_the_same_wall_time(store: BaseStore) -> None:
    task = make_task("moved", FIRST_0130)
    store.add_task(task)
    task.next_run_time = SECOND_0130  # same wall time, one hour later
    store.update_task(task)
    between = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert store.get_due_tasks(between) == []
    assert instant(store.get_next_run_time()) == instant(SECOND_0130)
