"""Routers: declare tasks in the module where they live, include them where the scheduler
is. Run it: ``PYTHONPATH=. python docs/examples/routers.py``.

In an application the routers would be in their own modules (``billing/tasks.py``,
``cache/tasks.py``) and the scheduler in ``main.py``; here they share one file.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tickwork import AsyncIOScheduler, BackgroundScheduler, FakeClock, TaskRouter
from tickwork.exceptions import RouterError
from tickwork.stores.sqlalchemy import SQLAlchemyStore

# --- cache/tasks.py: no scheduler here, nothing runs at import -----------------------------
cache = TaskRouter()
refreshed: list[str] = []


@cache.interval(seconds=0.2)
async def refresh_cache() -> None:
    refreshed.append("cache")


@cache.cron(hour=3, minute=30, max_instances=1)
def vacuum() -> None:
    """Nightly at 03:30 (the scheduler's zone)."""


# --- billing/tasks.py: a router's keywords are defaults for each of its tasks --------------
billing = TaskRouter("billing", coalesce=True, mistrigger_grace_time=3600)


@billing.add_task(trigger="calendarinterval", months=1, hour=6, start_at="2026-01-31")
def send_invoices() -> None:
    """Monthly at 06:00 on the last day of each month... and the 31st where there is one."""


def charge(plan: str) -> None:
    """A task with arguments, declared without a decorator."""


billing.add_task(charge, "cron", day_of_week="mon", hour=7, args=["pro"], id="charge-pro")

# --- app/tasks.py: routers nest ---------------------------------------------------------------
app_tasks = TaskRouter("app")
app_tasks.include_router(cache)
app_tasks.include_router(billing)


# --- main.py: one line schedules them all ------------------------------------------------------
async def main() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    tasks = scheduler.include_router(app_tasks)
    assert [task.id for task in tasks] == [
        "__main__:refresh_cache",  # ids: the function's module:qualname ...
        "__main__:vacuum",
        "__main__:send_invoices",
        "charge-pro",  # ... unless the task gives its own
    ]
    invoices = scheduler.get_task("__main__:send_invoices")
    assert invoices is not None
    assert invoices.mistrigger_grace_time == 3600  # the billing router's default
    async with scheduler:
        await asyncio.sleep(0.5)
    assert refreshed.count("cache") == 2


# --- restarts: the same ids, so a persistent store finds the tasks again ----------------------
def restart_twice(directory: Path) -> None:
    url = f"sqlite:///{directory / 'tasks.sqlite'}"
    clock = FakeClock(datetime(2026, 2, 1, tzinfo=UTC))
    for _ in range(2):  # two starts of the program
        scheduler = BackgroundScheduler(stores={"default": SQLAlchemyStore(url)}, clock=clock)
        scheduler.include_router(billing)  # replaces the stored tasks: never twice
        with scheduler:
            assert sorted(task.id for task in scheduler.get_tasks()) == [
                "__main__:send_invoices",
                "charge-pro",
            ]
            refused = ""
            try:
                scheduler.include_router(billing)
            except RouterError as exc:  # a router is included once
                refused = str(exc)
            assert "already included in this scheduler" in refused


if __name__ == "__main__":
    asyncio.run(main())
    with tempfile.TemporaryDirectory() as directory:
        restart_twice(Path(directory))
    print("ok: routers")
