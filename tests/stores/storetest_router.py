"""A router declared at import time, as an application module would: its tasks are
stored by reference (``module:qualname``), so they live in a module the tests import by
name."""

from __future__ import annotations

from tickwork import TaskRouter

router = TaskRouter("storetest_router")
nested = TaskRouter("storetest_router.nested", max_instances=2)


@router.interval(minutes=5)
def refresh_cache() -> None:
    """Every five minutes."""


@router.cron(hour=3)
async def purge_sessions() -> None:
    """Nightly."""


@nested.add_task(trigger="calendarinterval", months=1, hour=9)
def send_invoices() -> None:
    """Monthly, from the day it was first scheduled."""


router.include_router(nested)
