"""The worker side of :class:`~tickwork.executors.celery.CeleryExecutor`: the Celery task
``tickwork.run`` that calls a task's ``"module:function"`` reference, and the duplicate
check every worker task can use.

In the worker's app module::

    from tickwork.executors.celery_worker import register

    app = Celery("proj", broker=..., backend=...)
    register(app)

Why a duplicate check: RabbitMQ and Celery deliver at least once, and a scheduler that
dies between the broker's confirm and its "sent" marker leaves a second copy of a run's
message. Every copy of one slot's message has the same task id (the run's key), so the
first worker to claim the key runs it and later copies are dropped and logged, leaving
no result of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from tickwork.exceptions import MissingDependencyError
from tickwork.utils import ref_to_obj

try:
    import celery
    from celery.exceptions import Ignore
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        "celery", "tickwork.executors.celery_worker", "pip install 'tickwork[celery]'"
    ) from exc

__all__ = ["CLAIM_PREFIX", "claim_run", "current_run_key", "register"]

#: The prefix of the claim markers in the result backend.
CLAIM_PREFIX = "tickwork-celery-claimed-"

#: How long a claim is kept (seconds): longer than any redelivery of the same message.
CLAIM_TTL = 7 * 24 * 3600

logger = logging.getLogger("tickwork.executors.celery_worker")

_current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tickwork_celery_run_key", default=None
)


def current_run_key() -> str | None:
    """Inside a function run by ``tickwork.run``: the key of its run
    (``"{task_id}@{scheduled_utc}"``), e.g. as an idempotency key; None elsewhere."""
    return _current_key.get()


def claim_run(app: celery.Celery, key: str) -> bool:
    """Claim the run ``key`` (a Celery task id sent by tickwork) for this delivery: True
    for the first claim, False for every later one (a duplicate, to be dropped). Uses
    Redis ``SET NX`` on a Redis result backend; other backends are asked whether the run
    has a result yet (a weaker check: two copies running at the same time both pass)."""
    backend = app.backend
    client = getattr(backend, "client", None)
    if client is not None and hasattr(client, "set"):
        return bool(client.set(CLAIM_PREFIX + key, b"1", nx=True, ex=CLAIM_TTL))
    return bool(backend.get_state(key) in ("PENDING", "STARTED", "RECEIVED"))


def register(app: celery.Celery) -> Any:
    """Register the ``tickwork.run`` task on ``app`` (a worker's Celery app) and return
    it. It imports the reference, calls it with the run's arguments (``async def``
    functions under :func:`asyncio.run`) and returns what it returns; a duplicate
    delivery of a run is dropped (see :func:`claim_run`)."""

    @app.task(name="tickwork.run", bind=True)  # type: ignore[untyped-decorator]
    def run(self: celery.Task, ref: str, *args: Any, **kwargs: Any) -> Any:
        key = self.request.id
        if key is not None and not claim_run(app, key):
            logger.warning("run %s delivered again: duplicate dropped", key)
            # Ignore: no state is written, so the first delivery's result stays the one.
            raise Ignore()
        fn = ref_to_obj(ref)
        token = _current_key.set(key)
        try:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            return result
        finally:
            _current_key.reset(token)

    return run
