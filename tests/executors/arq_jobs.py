"""Functions the arq test workers run through ``tickwork.run`` (importable by reference)."""

from __future__ import annotations

import asyncio
import time

from tickwork.executors.arq_worker import current_run_key


def add(a: int, b: int) -> int:
    return a + b


def boom(message: str) -> None:
    raise ValueError(message)


def key() -> str | None:
    return current_run_key()


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def record(url: str, counter: str) -> None:
    """Count this run's execution (by its key) in the Redis hash ``counter``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.hincrby(counter, current_run_key() or "?", 1)
    finally:
        client.close()
