"""The arq worker settings of the arq executor tests (``arq arq_worker_settings.WorkerSettings``):
the Redis URL and queue name come from the environment (set by :mod:`arq_support`)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings

from tickwork.executors.arq_worker import tickwork_function


class WorkerSettings:
    functions: ClassVar[list[Any]] = [tickwork_function()]
    redis_settings = RedisSettings.from_dsn(os.environ["TICKWORK_TEST_ARQ_REDIS"])
    queue_name = os.environ["TICKWORK_TEST_ARQ_QUEUE"]
    poll_delay = 0.1
    max_jobs = 20
    job_timeout = float(os.environ.get("TICKWORK_TEST_ARQ_JOB_TIMEOUT", "300"))
    # What ArqExecutor.cancel_run needs: the worker acts on Job.abort.
    allow_abort_jobs = True
