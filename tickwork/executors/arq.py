"""Send runs to arq workers (Redis) instead of running them here.

The scheduler only *enqueues*: each run becomes one arq job whose job id is the run's key
``"{task_id}@{scheduled_utc}"`` (:func:`run_key`), calling the worker function
``tickwork.run`` (:mod:`tickwork.executors.arq_worker`) with the task's
``"module:function"`` reference. The run's record follows the job to its outcome
(``TASK_EXECUTED``, ``TASK_ERROR``, ``TASK_TIMEOUT``), so ``max_instances`` counts runs
enqueued and not yet finished by a worker, and a shared store's run lease stays held
until then.

Why no "sent" marker (unlike Celery): arq's enqueue is one Redis transaction that
refuses a job id while the job or its result is in Redis. Every scheduler of a fleet
enqueues a slot under the same id, so a second enqueue of one slot (a take-over from a
dead scheduler, or a retry after a connection broke before the reply came back) is
refused by arq itself, and the executor then follows the job already there.

All Redis I/O happens on one thread of the executor's own (with its own event loop),
never on the scheduler's event loop; a Redis that does not answer is retried with backoff
while the run keeps its slot (and its lease).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import time
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT
from tickwork.exceptions import (
    ArqRunLostError,
    ConfigurationError,
    InvalidTaskError,
    MissingDependencyError,
)
from tickwork.executors._enqueueing import EnqueuedRun, EnqueueingExecutor
from tickwork.executors._keys import run_key
from tickwork.tasks import Task

try:
    from arq.connections import ArqRedis, RedisSettings, create_pool
    from arq.constants import abort_jobs_ss, in_progress_key_prefix, result_key_prefix
    from arq.jobs import Job
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError("arq", "ArqExecutor", "pip install 'tickwork[arq]'") from exc

from tickwork.executors.arq_worker import WORKER_FUNCTION

__all__ = ["ArqExecutor", "run_key"]

#: Jobs whose states are read in one round trip.
_POLL_BATCH = 500

T = TypeVar("T")


class ArqExecutor(EnqueueingExecutor):
    """Enqueue each run as an arq job (see the module docstring for the guarantee).

    ``redis`` is a Redis URL (``"redis://host:6379/6"``) or an arq ``RedisSettings``;
    ``queue_name`` is the arq queue the workers read (arq's default ``"arq:queue"``);
    ``expires`` (seconds) is how long a job may wait for a worker before arq drops it
    (arq's default: one day); ``poll_interval`` is how often Redis is read for outcomes.

    The workers need ``tickwork_function()`` in their ``WorkerSettings.functions``. A
    task's ``timeout`` is applied by ``tickwork.run`` in the worker (``TASK_TIMEOUT``; the
    worker's ``job_timeout``, 300 s by default, also caps every job). tickwork's own
    ``retries`` cannot be kept per key, and are refused.

    ``cancel_run`` aborts the run's job (arq's ``Job.abort``), which the workers act on
    only with ``allow_abort_jobs = True`` in their ``WorkerSettings``: a queued job is
    dropped, a running ``async def`` function is cancelled at its ``await``, and the run
    ends ``TASK_CANCELLED``. A plain function runs in a thread, which cannot be stopped:
    arq reports the job aborted, and the thread runs on in the worker.
    """

    verb = "enqueued"
    retry_hint = (
        ", which arq refuses); retry inside the function, or raise arq.worker.Retry in an "
        "arq function of your own"
    )
    _published_elsewhere: ClassVar[str] = "is already in arq"

    def __init__(
        self,
        redis: str | RedisSettings = "redis://127.0.0.1:6379/0",
        queue_name: str = "arq:queue",
        expires: float | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(poll_interval)
        if expires is not None and expires <= 0:
            raise ConfigurationError(f"expires must be positive seconds, got {expires!r}")
        if isinstance(redis, str):
            try:
                settings = RedisSettings.from_dsn(redis)
            except Exception as exc:
                raise ConfigurationError(
                    f"ArqExecutor redis={redis!r} is not a Redis URL "
                    f"(redis://host:port/db or rediss://...): {exc}"
                ) from None
        elif isinstance(redis, RedisSettings):
            settings = redis
        else:
            raise ConfigurationError(
                f"ArqExecutor redis must be a Redis URL or arq RedisSettings, got {redis!r}"
            )
        # One attempt per connect: the executor's thread does the retrying (with backoff,
        # logged), arq's own retry loop would sleep on it silently.
        self.redis_settings = dataclasses.replace(settings, conn_retries=0)  # not the caller's
        self.queue_name = queue_name
        self.expires = expires
        #: The thread's event loop (arq's client is asyncio) and its Redis pool.
        self._runner: asyncio.Runner | None = None
        self._pool: ArqRedis | None = None

    # -- what goes to arq -----------------------------------------------------------------

    def _check_arguments(self, task: Task) -> None:
        """Refuse arguments pickle (arq's job serializer) cannot encode."""
        try:
            pickle.dumps((tuple(task.args), dict(task.kwargs)))
        except Exception as exc:
            raise InvalidTaskError(
                f"task {task.id!r}: its args/kwargs cannot be sent to arq (pickle): {exc}"
            ) from None

    def _message(self, task: Task) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return task.fn_ref, tuple(task.args), {"timeout": task._profile.policy.timeout or None}

    def _where(self) -> str:
        """Redis's address for log lines (never its password)."""
        s = self.redis_settings
        return f"Redis at {s.host}:{s.port}/{s.database} (queue {self.queue_name!r})"

    # -- the thread's event loop ----------------------------------------------------------

    def _open(self) -> None:
        """Start the thread's event loop; say when Redis does not answer at start (runs
        are kept and enqueued once it does)."""
        self._runner = asyncio.Runner()
        try:
            self._pool = self._run(create_pool(self.redis_settings))
        except Exception as exc:
            self._not_answering_at_start(exc)

    def _close(self) -> None:
        runner, pool = self._runner, self._pool
        self._pool = None
        if runner is None:
            return
        try:
            if pool is not None:
                runner.run(pool.aclose())
        finally:
            runner.close()
            self._runner = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._runner is not None  # (set by _open, on this thread)
        return self._runner.run(coroutine)

    # -- sending --------------------------------------------------------------------------

    def _publish_all(self, runs: list[EnqueuedRun]) -> tuple[list[EnqueuedRun], Exception | None]:
        return self._run(self._enqueue_all(runs))

    async def _enqueue_all(
        self, runs: list[EnqueuedRun]
    ) -> tuple[list[EnqueuedRun], Exception | None]:
        """Enqueue ``runs`` in order; return those left (from the first failure) and
        Redis's error."""
        index = 0
        try:
            if self._pool is None:
                self._pool = await create_pool(self.redis_settings)
            for index, run in enumerate(runs):  # noqa: B007 (read after a failure)
                await self._enqueue(self._pool, run)
        except Exception as exc:  # Redis did not answer
            return runs[index:], exc
        return [], None

    async def _enqueue(self, pool: ArqRedis, run: EnqueuedRun) -> None:
        """Enqueue one run under its key, then follow it. arq answers None when a job of
        that id (or its result) is already in Redis: another scheduler enqueued this slot,
        or an earlier try of ours did before its reply was lost."""
        job = await pool.enqueue_job(
            WORKER_FUNCTION,
            run.target,
            run.options["timeout"],
            run.args,
            run.kwargs,
            _job_id=run.key,
            _queue_name=self.queue_name,
            _expires=self.expires,
        )
        self._follow(run, job is None)

    def _revoke(self, runs: list[EnqueuedRun]) -> None:
        """Ask the workers to abort the runs' jobs: what ``Job.abort`` writes, without
        waiting there for the outcome (the poll reads it)."""
        if self._pool is None:
            raise ConnectionError("Redis has not answered yet")
        self._run(_abort(self._pool, [run.key for run in runs]))

    # -- following ------------------------------------------------------------------------

    def _poll(self) -> None:
        if self._pool is not None:
            self._run(self._poll_jobs(self._pool))

    async def _poll_jobs(self, pool: ArqRedis) -> None:
        """Read every followed job's state (a batch per round trip); report those that
        ended."""
        keys = list(self._followed)
        for first in range(0, len(keys), _POLL_BATCH):
            batch = keys[first : first + _POLL_BATCH]
            try:
                states = await self._states(pool, batch)
            except Exception as exc:
                self.logger.warning("could not read arq job states (%s); trying again", exc)
                return
            for key, (done, running, queued) in zip(batch, states, strict=True):
                run = self._followed.get(key)
                if run is None:  # no longer followed meanwhile (shutdown() let it go)
                    continue
                if done:
                    await self._finish(pool, run)
                elif running or queued:
                    self._present(run)
                else:
                    self._missing(run, ArqRunLostError(key, self.queue_name))

    async def _states(self, pool: ArqRedis, keys: list[str]) -> list[list[Any]]:
        """For each job: [has a result, is running, its queue score] (what arq's
        ``Job.status()`` reads), all read in one transaction."""
        async with pool.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.exists(result_key_prefix + key)
                pipe.exists(in_progress_key_prefix + key)
                pipe.zscore(self.queue_name, key)
            replies: list[Any] = await pipe.execute()
        return [replies[index : index + 3] for index in range(0, len(replies), 3)]

    async def _finish(self, pool: ArqRedis, run: EnqueuedRun) -> None:
        """Read a finished job's result and report its run."""
        job = Job(run.key, pool, _queue_name=self.queue_name, _deserializer=pool.job_deserializer)
        try:
            info = await job.result_info()
        except Exception as exc:
            self.logger.warning("could not read arq result of %s (%s); trying again", run.key, exc)
            return
        if info is None:  # the result expired since: the next poll finds the job gone
            return
        if self._take(run.key) is not None:
            self._report(run, info.success, info.result)

    def _report(self, run: EnqueuedRun, success: bool, result: Any) -> None:
        if success:
            self._outcome(run, TASK_EXECUTED, False, return_value=result)
            return
        exc = result if isinstance(result, BaseException) else RuntimeError(str(result))
        code = TASK_TIMEOUT if isinstance(exc, TimeoutError) else TASK_ERROR
        # arq's result of an aborted job is a CancelledError.
        dropped = isinstance(exc, asyncio.CancelledError)
        self._outcome(run, code, dropped, exception=exc, traceback=f"{type(exc).__name__}: {exc}")


async def _abort(pool: ArqRedis, keys: list[str]) -> None:
    """Mark ``keys`` aborted, as ``Job.abort`` does (a worker with ``allow_abort_jobs``
    reads the set)."""
    now = int(time.time() * 1000)
    await pool.zadd(abort_jobs_ss, dict.fromkeys(keys, now))


logging.getLogger(__name__).addHandler(logging.NullHandler())
