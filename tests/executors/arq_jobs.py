"""Functions the arq test workers run through ``tickwork.run`` (importable by reference)."""

from __future__ import annotations

from enqueued_jobs import add, async_add, async_sleep, boom, sleep

from tickwork.executors.arq_worker import current_run_key

__all__ = ["add", "async_add", "async_sleep", "boom", "key", "record", "sleep"]


def key() -> str | None:
    return current_run_key()


def record(url: str, counter: str) -> None:
    """Count this run's execution (by its key) in the Redis hash ``counter``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.hincrby(counter, current_run_key() or "?", 1)
    finally:
        client.close()
