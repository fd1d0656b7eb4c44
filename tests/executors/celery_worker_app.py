"""The Celery app of the test workers (``celery -A celery_worker_app worker``): broker and
result backend from the environment the tests start the worker with."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from tickwork.executors.celery_worker import claim_run, register

app = Celery(
    "tickwork_test_celery",
    broker=os.environ["TICKWORK_TEST_CELERY_BROKER"],
    backend=os.environ["TICKWORK_TEST_CELERY_BACKEND"],
)
app.conf.broker_transport_options = {"confirm_publish": True}
app.conf.worker_hijack_root_logger = False
register(app)


@app.task(name="tickwork_test.record", bind=True)  # type: ignore[untyped-decorator]
def record(self: Any, dsn: str, table: str) -> str:
    """Count one execution of this run (its Celery id is the run's key) in ``table``,
    once per key (a duplicate delivery is dropped)."""
    import psycopg

    key = self.request.id
    if not claim_run(app, key):
        return "duplicate"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (run_key) VALUES (%s)", (key,))
    return key
