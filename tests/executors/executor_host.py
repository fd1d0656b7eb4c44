"""What the executor tests share: a scheduler double and a one-off task builder."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

from tickwork.events import TaskExecutionEvent
from tickwork.executors import (
    AsyncIOExecutor,
    BaseExecutor,
    DebugExecutor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Host:
    """What an executor needs from its scheduler: somewhere to send events, and (for the
    asyncio executor) the loop and its thread. ``raise_on_dispatch`` plays a listener
    that raises."""

    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread: int | None = None) -> None:
        self.event_loop = loop
        self.event_loop_thread_id = threading.get_ident() if loop_thread is None else loop_thread
        self.events: list[TaskExecutionEvent] = []
        self.raise_on_dispatch = False
        self._lock = threading.Lock()

    def wants(self, code: int) -> bool:
        return True

    def emit(self, event: TaskExecutionEvent) -> None:
        with self._lock:
            self.events.append(event)
        if self.raise_on_dispatch:
            raise RuntimeError("listener broken on purpose")


def task(fn: Any, *args: Any, max_instances: int = 1, id: str = "t") -> Task:
    """A task running ``fn(*args)`` once, at ``T0``."""
    return Task(fn, DateTrigger(T0), args=args, id=id, max_instances=max_instances)


#: Every executor kind, by the name tests are parametrised with.
EXECUTORS: dict[str, type[BaseExecutor]] = {
    "asyncio": AsyncIOExecutor,
    "threadpool": ThreadPoolExecutor,
    "processpool": ProcessPoolExecutor,
    "debug": DebugExecutor,
}


def make(kind: str) -> BaseExecutor:
    """A new (not started) executor of ``kind``."""
    return EXECUTORS[kind]()
