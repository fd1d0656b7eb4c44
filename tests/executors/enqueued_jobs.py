"""Functions the Celery and arq test workers both run through ``tickwork.run``
(re-exported by :mod:`celery_jobs` and :mod:`arq_jobs`, whose references the tests use)."""

from __future__ import annotations

import asyncio
import time


def add(a: int, b: int) -> int:
    return a + b


def boom(message: str) -> None:
    raise ValueError(message)


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
