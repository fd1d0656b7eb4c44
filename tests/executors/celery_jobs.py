"""Functions the Celery test workers run through ``tickwork.run`` (importable by reference)."""

from __future__ import annotations

from enqueued_jobs import add, async_add, async_sleep, boom, sleep

from tickwork.executors.celery_worker import current_run_key

__all__ = ["add", "async_add", "async_sleep", "boom", "key", "record", "sleep"]


def key() -> str | None:
    return current_run_key()


def record(dsn: str, table: str) -> None:
    """Count this run's execution (by its key) in ``table``."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (run_key) VALUES (%s)", (current_run_key(),))
