"""What one "next fire time" costs: tickwork's CronTrigger against croniter and APScheduler 3.

Usage: ``python bench/cron_cost.py [--quick]`` prints a table. ``run(quick)`` returns the
rows as dicts, for ``bench/scenarios.py``.

Each schedule is asked for its next fire time from many start instants spread over a
year; a row reports the median microseconds per answer. tickwork and APScheduler build
the trigger once and ask it repeatedly; croniter has to be built for each start instant
(that is its API), so its figure includes construction. The libraries missing from this
environment show ``n/a``.

"Rare" rows are schedules whose next fire time is years away: a stepping search pays for
every candidate it skips; a field-by-field one does not.

:func:`build_costs` measures the other cost of a cron task: building its trigger (done
for every ``add_task`` and again for every task a persistent store loads) and the memory
one trigger keeps, with the same schedule for every task and with all different ones.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

try:
    from tickwork.triggers import CronTrigger
except ImportError:  # run from a checkout without installing tickwork
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tickwork.triggers import CronTrigger

Ask = Callable[[datetime], datetime | None]


@dataclass(frozen=True)
class Case:
    """One schedule, spelt for each library."""

    name: str
    kind: str  # "common" or "rare"
    zone: str
    crontab: str  # croniter's spelling
    kwargs: dict[str, Any] = field(default_factory=dict)  # tickwork/APScheduler keywords
    day_or: bool = True  # croniter: OR the two day fields (standard cron)


CASES = [
    Case("every minute", "common", "UTC", "* * * * *", {"minute": "*"}),
    Case("*/5 9-17 mon-fri", "common", "UTC", "*/5 9-17 * * mon-fri",
         {"day_of_week": "mon-fri", "hour": "9-17", "minute": "*/5"}),
    Case("daily 02:30 Berlin", "common", "Europe/Berlin", "30 2 * * *", {"hour": 2, "minute": 30}),
    Case("hourly New York", "common", "America/New_York", "0 * * * *", {"minute": 0}),
    Case("1st of the month", "common", "UTC", "0 0 1 * *", {"day": 1}),
    Case("last Friday", "common", "UTC", "0 0 * * L5", {"day": "last fri"}),
    Case("Friday the 13th", "rare", "UTC", "0 0 13 * fri", {"day": 13, "day_of_week": "fri"}, day_or=False),
    Case("Feb 29", "rare", "UTC", "0 0 29 2 *", {"month": 2, "day": 29}),
    Case("Feb 29 on a Monday", "rare", "UTC", "0 0 29 2 mon",
         {"month": 2, "day": 29, "day_of_week": "mon"}, day_or=False),
]  # fmt: skip


def tickwork_asker(case: Case) -> Ask:
    """The next fire time from tickwork (keyword constructor)."""
    trigger = CronTrigger(**case.kwargs, timezone=case.zone)
    return lambda now: trigger.get_next_trigger_time(UTC, None, now)


def croniter_asker(case: Case) -> Ask | None:
    """The next fire time from croniter, or None when it is not installed."""
    try:
        from croniter import croniter
    except ImportError:
        return None
    zone = ZoneInfo(case.zone)

    def ask(now: datetime) -> datetime | None:
        found: datetime = croniter(case.crontab, now.astimezone(zone), day_or=case.day_or).get_next(
            datetime
        )
        return found

    return ask


def apscheduler_asker(case: Case) -> Ask | None:
    """The next fire time from APScheduler 3, or None when it is not installed."""
    try:
        # By name: APScheduler 3 has no type information, and may be absent.
        module = importlib.import_module("apscheduler.triggers.cron")
    except ImportError:
        return None
    trigger = module.CronTrigger(**case.kwargs, timezone=case.zone)

    def ask(now: datetime) -> datetime | None:
        found: datetime | None = trigger.get_next_fire_time(None, now)
        return found

    return ask


def measure(ask: Ask, starts: list[datetime], repeats: int) -> tuple[float, datetime | None]:
    """Median microseconds per answer over ``repeats`` passes over ``starts``."""
    per_call: list[float] = []
    answer = ask(starts[0])
    for _ in range(repeats):
        began = time.perf_counter()
        for start in starts:
            ask(start)
        per_call.append((time.perf_counter() - began) / len(starts) * 1e6)
    return statistics.median(per_call), answer


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time every case on every installed library; one row per case."""
    count, repeats = (50, 3) if quick else (400, 7)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [first + timedelta(days=365 * i / count, seconds=37 * i) for i in range(count)]
    rows: list[dict[str, Any]] = []
    for case in CASES:
        row: dict[str, Any] = {"schedule": case.name, "kind": case.kind}
        next_fire = None
        for library, make in (
            ("tickwork", tickwork_asker),
            ("croniter", croniter_asker),
            ("apscheduler3", apscheduler_asker),
        ):
            ask = make(case)
            if ask is None:
                row[f"{library}_us"] = "n/a"
                continue
            micros, answer = measure(ask, starts, repeats)
            row[f"{library}_us"] = round(micros, 2)
            if library == "tickwork":
                next_fire = answer
        row["next_from_2026"] = next_fire.isoformat() if next_fire else "never"
        rows.append(row)
    return rows


def _cron_classes() -> list[tuple[str, Any]]:
    classes: list[tuple[str, Any]] = [("tickwork", CronTrigger)]
    with contextlib.suppress(ImportError):  # APScheduler may be absent
        module = importlib.import_module("apscheduler.triggers.cron")
        classes.append(("apscheduler3", module.CronTrigger))
    return classes


def build_costs(quick: bool = False) -> list[dict[str, Any]]:
    """Microseconds to build a cron trigger, and bytes kept per trigger, per library:
    the same schedule every time (most programs) and a different one each time."""
    count = 200 if quick else 1000
    rows: list[dict[str, Any]] = []
    for library, cls in _cron_classes():

        def same(i: int, cls: Any = cls) -> Any:
            return cls(day_of_week="mon-fri", hour=9, minute=30, timezone="UTC")

        def different(i: int, cls: Any = cls) -> Any:
            return cls(hour=i % 24, minute=(i // 24) % 60, second=i % 7, timezone="UTC")

        row: dict[str, Any] = {"library": library}
        for label, make in (("same", same), ("different", different)):
            make(-1)  # imports and first-use caches
            gc.collect()
            began = time.perf_counter()
            for i in range(count):
                make(i)
            row[f"build_us_{label}"] = round((time.perf_counter() - began) / count * 1e6, 1)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                kept = [make(i + count) for i in range(count)]
                row[f"bytes_{label}"] = round(
                    (tracemalloc.get_traced_memory()[0] - before) / len(kept)
                )
            finally:
                tracemalloc.stop()
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table."""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(row[k])) for row in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(row[k]).ljust(widths[k]) for k in keys) for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer start points and repeats")
    quick = parser.parse_args().quick
    print(table(run(quick=quick)))
    print()
    print(table(build_costs(quick=quick)))
