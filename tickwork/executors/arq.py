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
import contextlib
import dataclasses
import logging
import pickle
import queue as queues
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT, TaskExecutionEvent
from tickwork.exceptions import (
    ArqRunLostError,
    ConfigurationError,
    InvalidTaskError,
    MissingDependencyError,
)
from tickwork.executors._keys import run_key
from tickwork.executors.base import BaseExecutor, ExecutorHost, run_log_extra
from tickwork.tasks import Task

try:
    from arq.connections import ArqRedis, RedisSettings, create_pool
    from arq.constants import in_progress_key_prefix, result_key_prefix
    from arq.jobs import Job
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError("arq", "ArqExecutor", "pip install 'tickwork[arq]'") from exc

from tickwork.executors.arq_worker import WORKER_FUNCTION

__all__ = ["ArqExecutor", "run_key"]

#: Seconds between two attempts to reach a Redis that did not answer (the last repeats).
SEND_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)

#: Polls in a row that must find a followed job gone before its run is reported lost
#: (arq moves a job between its states in transactions: one poll would do; two cost
#: nothing and survive a reply read across a failover).
_GONE_POLLS = 2

#: Jobs whose states are read in one round trip.
_POLL_BATCH = 500


@dataclass(slots=True)
class _Run:
    """One run handed to the executor: not yet enqueued, then followed to its outcome."""

    task_id: str
    store: str | None
    run_time: datetime
    key: str
    ref: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None
    sent_at: float | None = None
    gone: int = 0


class ArqExecutor(BaseExecutor):
    """Enqueue each run as an arq job (see the module docstring for the guarantee).

    ``redis`` is a Redis URL (``"redis://host:6379/6"``) or an arq ``RedisSettings``;
    ``queue_name`` is the arq queue the workers read (arq's default ``"arq:queue"``);
    ``expires`` (seconds) is how long a job may wait for a worker before arq drops it
    (arq's default: one day); ``poll_interval`` is how often Redis is read for outcomes.

    The workers need ``tickwork_function()`` in their ``WorkerSettings.functions``. A
    task's ``timeout`` is applied by ``tickwork.run`` in the worker (``TASK_TIMEOUT``; the
    worker's ``job_timeout``, 300 s by default, also caps every job). tickwork's own
    ``retries`` cannot be kept per key, and are refused.
    """

    def __init__(
        self,
        redis: str | RedisSettings = "redis://127.0.0.1:6379/0",
        queue_name: str = "arq:queue",
        expires: float | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ConfigurationError(f"poll_interval must be positive, got {poll_interval!r}")
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
        self.poll_interval = poll_interval
        self._unsent: queues.SimpleQueue[_Run] = queues.SimpleQueue()
        self._followed: dict[str, _Run] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Start the thread that enqueues runs and follows them."""
        super().start(host, alias)
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._work, args=(ready,), name=f"tickwork-arq-{alias}", daemon=True
        )
        self._thread.start()
        ready.wait(10.0)

    def shutdown(self, wait: bool = True) -> None:
        """Stop enqueuing. Jobs already enqueued go on at the workers; with ``wait`` the
        runs not yet enqueued are tried once more before the thread stops. A run whose
        outcome is not known here keeps its store record, so a scheduler of the fleet
        takes it over and follows the same job (arq refuses to enqueue it again)."""
        self._stop_accepting()
        self._stop.set()
        self._nudge()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(30.0 if wait else 0.0)
        with self._instances_lock:
            left = len(self._followed)
        if left:
            self.logger.warning(
                "executor %r stopped while following %d enqueued run(s): their outcome is "
                "the workers'; a shared store hands their records to another scheduler",
                self.alias,
                left,
            )
        with self._instances_lock:
            self._followed.clear()
            self._instances.clear()
            self._idle.notify_all()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """True at once: an enqueued run belongs to the workers, and a scheduler shutting
        down does not wait for their outcome (its record stays for the fleet)."""
        return True

    # -- checks ---------------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Refuse at ``add_task`` what cannot go to arq: arguments pickle (arq's job
        serializer) cannot encode, and tickwork retries (a retry would reuse the key)."""
        if task._profile.policy.retries:
            raise InvalidTaskError(
                f"task {task.id!r}: retries={task._profile.policy.retries} cannot be kept by "
                "ArqExecutor (a retry would reuse the run's key, which arq refuses); retry "
                "inside the function, or raise arq.worker.Retry in an arq function of your own"
            )
        try:
            pickle.dumps((tuple(task.args), dict(task.kwargs)))
        except Exception as exc:
            raise InvalidTaskError(
                f"task {task.id!r}: its args/kwargs cannot be sent to arq (pickle): {exc}"
            ) from None

    # -- sending --------------------------------------------------------------------------

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Queue each run for the executor's thread (never blocks on Redis)."""
        if self._thread is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        timeout = task._profile.policy.timeout or None
        # One job per run time (a backlog not coalesced): each slot has its own key. They
        # share the instance slot of max_instances.
        for run_time in run_times:
            self._unsent.put(
                _Run(
                    task.id,
                    task.store_alias,
                    run_time,
                    run_key(task.id, run_time),
                    task.fn_ref,
                    tuple(task.args),
                    dict(task.kwargs),
                    timeout,
                )
            )
        with self._instances_lock:
            self._instances[task.id] += len(run_times) - 1
        self._nudge()

    def _nudge(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the thread's loop has closed
                loop.call_soon_threadsafe(wake.set)

    def _work(self, ready: threading.Event) -> None:
        """The executor's thread: its own event loop, for arq's asyncio client."""
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        ready.set()
        pool: ArqRedis | None = None
        pending: list[_Run] = []
        failures = 0
        retry_at = 0.0
        first = True
        try:
            while True:
                pending.extend(self._drain())
                if self._stop.is_set() and (not pending or failures):
                    break
                if pending and time.monotonic() >= retry_at:
                    try:
                        if pool is None:
                            pool = await create_pool(self.redis_settings)
                        pending = await self._enqueue_all(pool, pending)
                        failures = 0
                    except Exception as exc:  # Redis did not answer
                        delay = SEND_BACKOFF[min(failures, len(SEND_BACKOFF) - 1)]
                        failures += 1
                        retry_at = time.monotonic() + delay
                        self.logger.error(
                            "executor %r cannot reach Redis at %s (%s); %d run(s) are kept "
                            "and enqueued when it answers (next try in %.1f s)",
                            self.alias,
                            self._where(),
                            exc,
                            len(pending),
                            delay,
                        )
                elif first and pool is None:
                    pool = await self._connect_at_start()
                first = False
                if pool is not None and self._followed:
                    await self._poll(pool)
                if self._stop.is_set() and not pending:
                    break
                wait = self.poll_interval if self._followed or pending else 1.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
        finally:
            self._loop = None
            if pending:
                self.logger.warning(
                    "executor %r stopped with %d run(s) not enqueued (Redis at %s did not "
                    "answer); a shared store hands their records to another scheduler",
                    self.alias,
                    len(pending),
                    self._where(),
                )
            if pool is not None:
                await pool.aclose()

    async def _connect_at_start(self) -> ArqRedis | None:
        """Say at start when Redis does not answer; runs are kept and enqueued once it
        does."""
        try:
            return await create_pool(self.redis_settings)
        except Exception as exc:
            self.logger.error(
                "executor %r: Redis at %s does not answer at start (%s); runs are kept and "
                "enqueued when it answers, retried with backoff",
                self.alias,
                self._where(),
                exc,
            )
            return None

    def _where(self) -> str:
        """Redis's address for log lines (never its password)."""
        s = self.redis_settings
        return f"{s.host}:{s.port}/{s.database} (queue {self.queue_name!r})"

    def _drain(self) -> list[_Run]:
        runs: list[_Run] = []
        try:
            while True:
                runs.append(self._unsent.get_nowait())
        except queues.Empty:
            return runs

    async def _enqueue_all(self, pool: ArqRedis, runs: list[_Run]) -> list[_Run]:
        """Enqueue ``runs`` in order; on a Redis error, the error is raised with the runs
        from the failing one on left in ``runs`` (the caller keeps them)."""
        while runs:
            await self._enqueue(pool, runs[0])
            runs = runs[1:]
        return runs

    async def _enqueue(self, pool: ArqRedis, run: _Run) -> None:
        """Enqueue one run under its key, then follow it. arq answers None when a job of
        that id (or its result) is already in Redis: another scheduler enqueued this slot,
        or an earlier try of ours did before its reply was lost."""
        job = await pool.enqueue_job(
            WORKER_FUNCTION,
            run.ref,
            run.timeout,
            run.args,
            run.kwargs,
            _job_id=run.key,
            _queue_name=self.queue_name,
            _expires=self.expires,
        )
        if job is None:
            self.logger.info(
                "run %s is already in arq: following it, not enqueuing it again",
                run.key,
                extra=run_log_extra(run.task_id, run.run_time),
            )
        run.sent_at = time.monotonic()
        self._followed[run.key] = run

    # -- following ------------------------------------------------------------------------

    async def _poll(self, pool: ArqRedis) -> None:
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
                    run.gone = 0
                else:
                    run.gone += 1
                    if run.gone >= _GONE_POLLS and self._followed.pop(key, None) is not None:
                        lost = ArqRunLostError(key, self.queue_name)
                        self._ended(run, TASK_ERROR, exception=lost, traceback=str(lost))

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

    async def _finish(self, pool: ArqRedis, run: _Run) -> None:
        """Read a finished job's result and report its run."""
        job = Job(run.key, pool, _queue_name=self.queue_name, _deserializer=pool.job_deserializer)
        try:
            info = await job.result_info()
        except Exception as exc:
            self.logger.warning("could not read arq result of %s (%s); trying again", run.key, exc)
            return
        if info is None:  # the result expired since: the next poll finds the job gone
            return
        if self._followed.pop(run.key, None) is None:
            return  # shutdown() let it go meanwhile: its record is the fleet's now
        self._report(run, info.success, info.result)

    def _report(self, run: _Run, success: bool, result: Any) -> None:
        if success:
            self._ended(run, TASK_EXECUTED, return_value=result)
            return
        exc = result if isinstance(result, BaseException) else RuntimeError(str(result))
        code = TASK_TIMEOUT if isinstance(exc, TimeoutError) else TASK_ERROR
        self._ended(run, code, exception=exc, traceback=f"{type(exc).__name__}: {exc}")

    def _ended(self, run: _Run, code: int, **fields: Any) -> None:
        duration = None if run.sent_at is None else time.monotonic() - run.sent_at
        event = TaskExecutionEvent(
            code, run.task_id, run.store, run.run_time, duration=duration, **fields
        )
        self._run_finished(run.task_id, [event])


logging.getLogger(__name__).addHandler(logging.NullHandler())
