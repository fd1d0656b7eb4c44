"""Helpers for scheduler tests: a harness over every scheduler kind, and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tickwork.events import ALL_EVENTS
from tickwork.schedulers import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BaseScheduler,
    NativeAsyncIOScheduler,
)

KINDS = ["asyncio", "asyncio-thread", "native", "background"]


class Harness:
    """Start/stop any scheduler kind from an async test, and record its events."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schedulers: list[BaseScheduler] = []
        self.events: list[Any] = []

    def make(self, **options: Any) -> BaseScheduler:
        scheduler: BaseScheduler
        if self.kind == "asyncio":
            scheduler = AsyncIOScheduler(**options)
        elif self.kind == "asyncio-thread":
            scheduler = AsyncIOScheduler(isolated_event_loop=True, **options)
        elif self.kind == "native":
            scheduler = NativeAsyncIOScheduler(**options)
        else:
            scheduler = BackgroundScheduler(**options)
        scheduler.add_listener(self.events.append, ALL_EVENTS)
        self.schedulers.append(scheduler)
        return scheduler

    async def start(self, scheduler: BaseScheduler, paused: bool = False) -> None:
        if isinstance(scheduler, NativeAsyncIOScheduler):
            await scheduler.start(paused=paused)
        else:
            scheduler.start(paused=paused)  # type: ignore[attr-defined]

    async def shutdown(self, scheduler: BaseScheduler, wait: bool = True) -> None:
        if isinstance(scheduler, NativeAsyncIOScheduler):
            await scheduler.shutdown(wait)
        elif self.kind == "asyncio":
            await scheduler.shutdown_async(wait)
        else:
            await asyncio.to_thread(scheduler.shutdown, wait)  # type: ignore[attr-defined]

    async def started(self, **options: Any) -> BaseScheduler:
        scheduler = self.make(**options)
        await self.start(scheduler)
        return scheduler

    def codes(self, code: int) -> list[Any]:
        return [event for event in self.events if event.code == code]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


async def worst_loop_lag_until(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    """Sleep 1 ms at a time until ``condition`` holds (or ``timeout``), and return the
    longest extra delay seen: how long something kept the event loop from turning."""
    worst = 0.0
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - before - 0.001)
    return worst
