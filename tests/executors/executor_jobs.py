"""Module-level task functions for executor tests (process pools pickle them by name)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import weakref


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


async def async_fail(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


class TrackedError(ValueError):
    """An error whose instances can be weakly referenced (builtin exceptions' cannot)."""


class Payload:
    """An object a failing task keeps in a local variable."""


#: Weak references to the payloads of the *_with_a_local runs of this process.
PAYLOADS: list[weakref.ref[Payload]] = []


def fail_with_a_local(message: str) -> None:
    payload = Payload()
    PAYLOADS.append(weakref.ref(payload))
    raise TrackedError(message)


async def async_fail_with_a_local(message: str) -> None:
    payload = Payload()
    PAYLOADS.append(weakref.ref(payload))
    await asyncio.sleep(0)
    raise TrackedError(message)
