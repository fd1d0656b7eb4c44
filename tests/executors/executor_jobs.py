"""Module-level task functions for executor tests (process pools pickle them by name)."""

from __future__ import annotations

import asyncio
import os
import signal
import time


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def sleep_then_return(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


async def async_sleep_then_return(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


def kill_own_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
