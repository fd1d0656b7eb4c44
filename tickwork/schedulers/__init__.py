"""Schedulers: one core (:mod:`tickwork.schedulers.base`), variants that differ only in
how they wait between passes."""

from __future__ import annotations

from tickwork.schedulers.asyncio import AsyncIOScheduler, NativeAsyncIOScheduler
from tickwork.schedulers.background import BackgroundScheduler
from tickwork.schedulers.base import BaseScheduler, SchedulerState
from tickwork.schedulers.blocking import BlockingScheduler

__all__ = [
    "AsyncIOScheduler",
    "BackgroundScheduler",
    "BaseScheduler",
    "BlockingScheduler",
    "NativeAsyncIOScheduler",
    "SchedulerState",
]
