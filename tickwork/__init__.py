"""tickwork: an asyncio-first task scheduler with the asyncz/APScheduler API, correct under
DST, safe with many processes, and fast.

The most used names are importable from here; every name also lives in its own module
(``tickwork.schedulers``, ``tickwork.routers``, ``tickwork.triggers``, ``tickwork.stores``,
``tickwork.executors``, ``tickwork.events``, ``tickwork.exceptions``, ``tickwork.utils``,
``tickwork.locks``).
"""

from __future__ import annotations

from tickwork._version import __version__
from tickwork.clock import Clock, FakeClock, SystemClock
from tickwork.context import TaskContext
from tickwork.exceptions import TickworkError
from tickwork.routers import TaskRouter
from tickwork.schedulers import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BaseScheduler,
    BlockingScheduler,
    NativeAsyncIOScheduler,
)
from tickwork.stores import MemoryStore
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger, IntervalTrigger, ShutdownTrigger
from tickwork.utils import make_async_function, make_function

__all__ = [
    "AsyncIOScheduler",
    "BackgroundScheduler",
    "BaseScheduler",
    "BlockingScheduler",
    "Clock",
    "DateTrigger",
    "FakeClock",
    "IntervalTrigger",
    "MemoryStore",
    "NativeAsyncIOScheduler",
    "ShutdownTrigger",
    "SystemClock",
    "Task",
    "TaskContext",
    "TaskRouter",
    "TickworkError",
    "__version__",
    "make_async_function",
    "make_function",
]
