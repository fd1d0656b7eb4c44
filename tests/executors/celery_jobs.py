"""Functions the Celery test workers run through ``tickwork.run`` (importable by reference)."""

from __future__ import annotations

from tickwork.executors.celery_worker import current_run_key


def add(a: int, b: int) -> int:
    return a + b


def boom(message: str) -> None:
    raise ValueError(message)


def key() -> str | None:
    return current_run_key()


async def async_add(a: int, b: int) -> int:
    return a + b


def record(dsn: str, table: str) -> None:
    """Count this run's execution (by its key) in ``table``."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (run_key) VALUES (%s)", (current_run_key(),))
