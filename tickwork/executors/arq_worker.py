"""The worker side of :class:`~tickwork.executors.arq.ArqExecutor`: the arq function
``tickwork.run`` that calls a task's ``"module:function"`` reference.

In the worker's settings module (``arq proj.worker.WorkerSettings``)::

    from tickwork.executors.arq_worker import tickwork_function

    class WorkerSettings:
        functions = [tickwork_function(), *your_own_functions]
        redis_settings = RedisSettings.from_dsn("redis://127.0.0.1:6379/6")
        queue_name = "proj"  # the executor's queue_name

Why ``keep_result`` matters: arq refuses to enqueue a job id while the job *or its result*
is in Redis. The run's key is the job id, so the result kept for :data:`KEEP_RESULT` is
what refuses a second enqueue of the same slot after the run ended (a scheduler taking
over a dead one's run): keep it longer than any take-over can come (a store's lease time).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from tickwork.exceptions import ConfigurationError, MissingDependencyError
from tickwork.utils import ref_to_obj

try:
    from arq.worker import Function, func
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        "arq", "tickwork.executors.arq_worker", "pip install 'tickwork[arq]'"
    ) from exc

__all__ = ["KEEP_RESULT", "WORKER_FUNCTION", "current_run_key", "run", "tickwork_function"]

#: The arq function name the executor enqueues.
WORKER_FUNCTION = "tickwork.run"

#: Seconds a run's result is kept in Redis by default (one day): while it is there, the
#: slot's key cannot be enqueued again.
KEEP_RESULT = 24 * 3600.0

logger = logging.getLogger("tickwork.executors.arq_worker")

_current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tickwork_arq_run_key", default=None
)


def current_run_key() -> str | None:
    """Inside a function run by ``tickwork.run``: the key of its run
    (``"{task_id}@{scheduled_utc}"``, the arq job id), e.g. as an idempotency key; None
    elsewhere."""
    return _current_key.get()


async def run(
    ctx: dict[str, Any],
    ref: str,
    timeout: float | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Import ``ref`` and call it with ``args``/``kwargs``: an ``async def`` function on the
    worker's loop, any other in a thread (the worker's loop keeps serving its other
    jobs). Past ``timeout`` seconds it raises :class:`TimeoutError` (a thread is not
    stopped: its result is dropped)."""
    key = ctx.get("job_id")
    tries = int(ctx.get("job_try") or 1)
    if tries > 1:
        # arq runs a job again when its worker stopped before finishing it (at least once).
        logger.warning("run %s started again (try %d): its earlier try did not finish", key, tries)
    fn = ref_to_obj(ref)
    token = _current_key.set(key)
    try:
        if asyncio.iscoroutinefunction(fn):
            awaitable = fn(*args, **kwargs)
        else:
            awaitable = asyncio.to_thread(_call, fn, args, kwargs)
        return await asyncio.wait_for(awaitable, timeout)
    finally:
        _current_key.reset(token)


def _call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = fn(*args, **kwargs)
    if asyncio.iscoroutine(result):  # a function returning a coroutine
        result = asyncio.run(result)
    return result


def tickwork_function(keep_result: float = KEEP_RESULT, max_tries: int | None = None) -> Function:
    """The arq function ``tickwork.run`` for a worker's ``WorkerSettings.functions``.
    ``keep_result`` (seconds) is how long a run's result stays in Redis, refusing a second
    enqueue of its slot; ``max_tries`` caps arq's re-runs of a job whose worker stopped
    (None: the worker's setting)."""
    if keep_result <= 0:
        raise ConfigurationError(
            f"keep_result must be positive (a kept result refuses a duplicate), got {keep_result!r}"
        )
    return func(run, name=WORKER_FUNCTION, keep_result=keep_result, max_tries=max_tries)
