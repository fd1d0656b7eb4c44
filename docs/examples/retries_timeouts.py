"""Timeouts, retries and cancelling: a flaky task tried again with backoff, a hung one cut
off at its timeout, and a run cancelled by its run id; every attempt on record."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler
from tickwork.events import TASK_RETRY, TaskRetryEvent

attempts = 0


async def fetch_rates() -> str:
    global attempts
    attempts += 1
    if attempts < 3:
        raise ConnectionError(f"rates service down (try {attempts})")
    return "rates"


async def stuck_report() -> None:
    await asyncio.sleep(3600)  # a call that never answers


async def long_export() -> None:
    await asyncio.sleep(3600)


async def main() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    retries: list[TaskRetryEvent] = []
    scheduler.add_listener(retries.append, TASK_RETRY)
    scheduler.start()

    # Up to 3 more tries, 0.1 s after the first failure, then 0.2 s, 0.4 s ...,
    # only for connection errors.
    scheduler.add_task(
        fetch_rates,
        id="rates",
        retries=3,
        retry_delay=0.1,
        retry_backoff=2,
        retry_on=(ConnectionError,),
    )
    # Cancelled after 0.2 s, reported TASK_TIMEOUT, recorded as "timeout".
    scheduler.add_task(stuck_report, id="report", timeout=0.2)
    scheduler.add_task(long_export, id="export")

    await asyncio.sleep(0.1)
    (running,) = await scheduler.get_runs_async("export", outcome="running")
    cancelled = await scheduler.cancel_run_async(running.run_id)

    await asyncio.sleep(1.0)
    runs = await scheduler.get_runs_async("rates")
    report = await scheduler.get_runs_async("report")
    export = await scheduler.get_runs_async("export")
    await scheduler.shutdown_async()

    for record in reversed(runs):
        print(record.run_id, record.outcome, record.error)
    assert [(r.attempt, r.outcome) for r in reversed(runs)] == [
        (1, "error"),
        (2, "error"),
        (3, "success"),
    ]
    assert [event.attempt for event in retries] == [2, 3]
    assert [r.outcome for r in report] == ["timeout"]
    assert cancelled
    assert [r.outcome for r in export] == ["cancelled"]


asyncio.run(main())
