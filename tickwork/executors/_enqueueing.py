"""The shared base of the executors that hand runs to a worker fleet (Celery, arq).

Such an executor only *enqueues*: each run becomes one message (a job) whose id is the
run's key (:func:`~tickwork.executors._keys.run_key`), then the run is *followed* until
the workers report its outcome, so ``max_instances`` counts runs enqueued and not yet
finished, and a shared store's run lease stays held until then.

This module owns what every such executor does alike, on one thread of the executor's
own (never the scheduler's event loop):

* the bookkeeping: a run waits in the inbox until the thread publishes it, then is
  followed under its key until its outcome, or until shutdown lets it go;
* the backoff: a broker that does not answer is tried again after 0.5, 1, 2, 5, then
  every 10 s, logged each time, while the runs keep their slot (and lease);
* shutdown: runs not yet published are tried once more, and what is left is said;
* cancelling: a run not yet published ends ``TASK_CANCELLED`` at once; a published one is
  revoked at the workers and ends ``TASK_CANCELLED`` when the workers say they dropped it.

A backend subclass says only what differs: how to publish, how to read outcomes (and
what of them means "gone"), and how to revoke.
"""

from __future__ import annotations

import queue as queues
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from tickwork.events import TASK_CANCELLED, TASK_ERROR, TaskExecutionEvent
from tickwork.exceptions import ConfigurationError, InvalidTaskError, RunCancelledError
from tickwork.executors._keys import run_key
from tickwork.executors.base import BaseExecutor, ExecutorHost, run_log_extra
from tickwork.tasks import Task

__all__ = ["SEND_BACKOFF", "EnqueuedRun", "EnqueueingExecutor"]

#: Seconds between two attempts to reach a broker that did not answer (the last repeats).
SEND_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)

#: How long shutdown waits for the thread to make its last try (seconds).
_JOIN_TIMEOUT = 30.0


@dataclass(slots=True)
class EnqueuedRun:
    """One run handed to the executor: waiting to be published, then followed."""

    task_id: str
    store: str | None
    run_time: datetime
    key: str
    #: What the workers call: a Celery task name, or the arq function's reference.
    target: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    #: Per-message options of the backend (Celery's time limits and queue, arq's timeout).
    options: dict[str, Any] = field(default_factory=dict)
    #: When it was published (monotonic); None while it waits.
    sent_at: float | None = None
    #: Polls in a row that found it nowhere (see ``EnqueueingExecutor._missing``).
    gone: int = 0
    #: Why it was cancelled, once ``cancel_run`` asked; None otherwise.
    cancelled: str | None = None
    #: Whether the workers were asked to drop it (after ``cancelled`` was set).
    revoked: bool = False


class EnqueueingExecutor(BaseExecutor):
    """An executor whose runs are messages to a worker fleet (see the module docstring).

    Subclasses implement :meth:`_message`, :meth:`_check_arguments`, :meth:`_publish_all`,
    :meth:`_poll`, :meth:`_revoke` and :meth:`_where`; :meth:`_open` and :meth:`_close`
    run on the executor's thread around its loop.
    """

    #: The word for "published" in log lines ("sent", "enqueued").
    verb: ClassVar[str] = "sent"
    #: What tickwork's refused ``retries`` should be done with instead (for the error).
    retry_hint: ClassVar[str] = ""
    #: Polls in a row that must find a followed run gone before it is reported lost (a
    #: broker moves a message between its states in transactions: one poll would do; two
    #: cost nothing and survive a reply read across a failover).
    gone_polls: ClassVar[int] = 2

    def __init__(self, poll_interval: float) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ConfigurationError(f"poll_interval must be positive, got {poll_interval!r}")
        self.poll_interval = poll_interval
        #: Runs handed over and not yet taken by the thread (None: a wake-up).
        self._inbox: queues.SimpleQueue[EnqueuedRun | None] = queues.SimpleQueue()
        #: Runs published, by key, until their outcome (read by the thread only, cleared
        #: by shutdown).
        self._followed: dict[str, EnqueuedRun] = {}
        #: Every run handed over and not yet ended, by key (for cancel_run).
        self._known: dict[str, EnqueuedRun] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- what a backend says --------------------------------------------------------------

    @abstractmethod
    def _message(self, task: Task) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """The target, positional arguments and message options of ``task``'s runs."""

    @abstractmethod
    def _check_arguments(self, task: Task) -> None:
        """Raise :class:`InvalidTaskError` when ``task``'s arguments cannot be sent."""

    @abstractmethod
    def _publish_all(self, runs: list[EnqueuedRun]) -> tuple[list[EnqueuedRun], Exception | None]:
        """Publish ``runs`` in order, each then followed (:meth:`_follow`); return those
        left (from the first failure on) and the broker's error."""

    @abstractmethod
    def _poll(self) -> None:
        """Read the outcome of the followed runs; end those that ended (:meth:`_ended`)."""

    @abstractmethod
    def _revoke(self, runs: list[EnqueuedRun]) -> None:
        """Ask the workers to drop ``runs`` (published, cancelled); raise when the broker
        does not answer (tried again at the next round)."""

    @abstractmethod
    def _where(self) -> str:
        """The broker for log lines, never its password ("the Celery broker amqp://...")."""

    def _open(self) -> None:
        """On the thread, before its loop: connect, and say when the broker does not
        answer (the scheduler's start never waits for it)."""

    def _close(self) -> None:
        """On the thread, after its loop: release connections."""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Start the thread that publishes runs and follows them."""
        super().start(host, alias)
        self._stop.clear()
        name = f"tickwork-{type(self).__name__.removesuffix('Executor').lower()}-{alias}"
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop publishing. Runs already published go on at the workers; with ``wait`` the
        runs not yet published are tried once more before the thread stops. A run whose
        outcome is not known here keeps its store record, so a scheduler of the fleet
        takes it over and follows the same key (it is not published twice)."""
        self._stop_accepting()
        self._stop.set()
        self._inbox.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT if wait else 0.0)
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
            self._known.clear()
            self._instances.clear()
            self._idle.notify_all()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """True at once: an enqueued run belongs to the workers, and a scheduler shutting
        down does not wait for their outcome (its record stays for the fleet)."""
        return True

    # -- checks and sending ---------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Refuse at ``add_task`` what cannot be enqueued: arguments the backend cannot
        encode, and tickwork retries (a retry would reuse the run's key)."""
        retries = task._profile.policy.retries
        if retries:
            raise InvalidTaskError(
                f"task {task.id!r}: retries={retries} cannot be kept by "
                f"{type(self).__name__} (a retry would reuse the run's key{self.retry_hint}"
            )
        self._check_arguments(task)

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Queue each run for the executor's thread (never blocks on the broker)."""
        if self._thread is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        target, args, options = self._message(task)
        # More than one run time (a backlog not coalesced) is one message per run: each
        # slot has its own key. They share the instance slot of max_instances.
        runs = [
            EnqueuedRun(
                task.id,
                task.store_alias,
                run_time,
                run_key(task.id, run_time),
                target,
                args,
                dict(task.kwargs),
                options,
            )
            for run_time in run_times
        ]
        with self._instances_lock:
            # One message per run, one instance for them all: the instance count goes back
            # when the last of them ends (see _ended).
            self._instances[task.id] += len(runs) - 1
            for run in runs:
                self._known[run.key] = run
        for run in runs:
            self._inbox.put(run)

    # -- the thread -----------------------------------------------------------------------

    def _work(self) -> None:
        """The executor's thread: publish what is queued, read outcomes, repeat."""
        self._open()
        pending: list[EnqueuedRun] = []
        failures = 0
        retry_at = 0.0
        try:
            while True:
                busy = bool(self._followed or pending)
                pending = self._uncancelled(
                    pending + self._drain(self.poll_interval if busy else 1.0)
                )
                stopping = self._stop.is_set()
                if pending and (stopping or time.monotonic() >= retry_at):
                    pending, error = self._publish_all(pending)
                    if error is None:
                        failures = 0
                    else:
                        delay = SEND_BACKOFF[min(failures, len(SEND_BACKOFF) - 1)]
                        failures += 1
                        retry_at = time.monotonic() + delay
                        self._unreachable(error, len(pending), delay)
                        if stopping:
                            break
                if self._followed:
                    self._revoke_cancelled()
                    self._poll()
                if stopping:
                    break
        finally:
            if pending:
                self.logger.warning(
                    "executor %r stopped with %d run(s) not %s (%s did not answer); a shared "
                    "store hands their records to another scheduler",
                    self.alias,
                    len(pending),
                    self.verb,
                    self._where(),
                )
            self._close()

    def _drain(self, timeout: float) -> list[EnqueuedRun]:
        """The runs handed over since the last round, waiting up to ``timeout`` for one."""
        runs: list[EnqueuedRun] = []
        try:
            item = self._inbox.get(timeout=timeout)
            while True:
                if item is not None:
                    runs.append(item)
                item = self._inbox.get_nowait()
        except queues.Empty:
            return runs

    def _unreachable(self, error: Exception, kept: int, delay: float) -> None:
        self.logger.error(
            "executor %r cannot reach %s (%s); %d run(s) are kept and %s when it answers "
            "(next try in %.1f s)",
            self.alias,
            self._where(),
            error,
            kept,
            self.verb,
            delay,
        )

    def _not_answering_at_start(self, error: Exception) -> None:
        """For :meth:`_open`: the broker did not answer the first connect."""
        self.logger.error(
            "executor %r: %s does not answer at start (%s); runs are kept and %s when it "
            "answers, retried with backoff",
            self.alias,
            self._where(),
            error,
            self.verb,
        )

    # -- bookkeeping, for the backends ----------------------------------------------------

    def _follow(self, run: EnqueuedRun, already_there: bool) -> None:
        """``run`` is published (by us, or ``already_there`` by another scheduler, which
        is said): follow it to its outcome."""
        if already_there:
            self.logger.info(
                "run %s %s: following it, not %s it again",
                run.key,
                self._published_elsewhere,
                "sending" if self.verb == "sent" else "enqueuing",
                extra=run_log_extra(run.task_id, run.run_time),
            )
        run.sent_at = time.monotonic()
        self._followed[run.key] = run

    #: How :meth:`_follow` says a run was already published.
    _published_elsewhere: ClassVar[str] = "was sent by another scheduler"

    def _take(self, key: str) -> EnqueuedRun | None:
        """Stop following ``key``; None when shutdown() let it go meanwhile (its record
        is the fleet's now)."""
        return self._followed.pop(key, None)

    def _present(self, run: EnqueuedRun) -> None:
        """A poll found ``run`` queued or running."""
        run.gone = 0

    def _missing(self, run: EnqueuedRun, lost: BaseException) -> None:
        """A poll found ``run`` nowhere: after :attr:`gone_polls` such polls in a row it
        ends ``TASK_ERROR`` with ``lost`` (instead of holding its slot forever)."""
        run.gone += 1
        if run.gone >= self.gone_polls and self._take(run.key) is not None:
            self._ended(run, TASK_ERROR, exception=lost, traceback=str(lost))

    def _ended(self, run: EnqueuedRun, code: int, **fields: Any) -> None:
        """Report ``run``'s outcome and release its share of the instance slot."""
        duration = None if run.sent_at is None else time.monotonic() - run.sent_at
        with self._instances_lock:
            self._known.pop(run.key, None)
        event = TaskExecutionEvent(
            code, run.task_id, run.store, run.run_time, duration=duration, **fields
        )
        self._run_finished(run.task_id, [event])

    def _outcome(self, run: EnqueuedRun, code: int, dropped: bool, **fields: Any) -> None:
        """End a followed run with the workers' outcome: ``TASK_CANCELLED`` when it was
        cancelled and the workers ``dropped`` it; a cancelled run the workers ran anyway
        ends as it ended, said in a warning (a cancel is never silently lost)."""
        if run.cancelled is not None:
            if dropped:
                self._cancelled(run)
                return
            self.logger.warning(
                "run %s was cancelled (%s) but the workers ran it to its end (it had "
                "started, or they do not act on cancels: see the executor's docs); reported "
                "as it ended",
                run.key,
                run.cancelled,
                extra=run_log_extra(run.task_id, run.run_time),
            )
        self._ended(run, code, **fields)

    def _cancelled(self, run: EnqueuedRun) -> None:
        exc = RunCancelledError(run.cancelled or "cancelled")
        self._ended(run, TASK_CANCELLED, exception=exc, traceback=f"RunCancelledError: {exc}")

    # -- cancelling -----------------------------------------------------------------------

    def cancel_run(self, task_id: str, run_time: datetime | None, reason: str) -> int:
        """Cancel the runs of ``task_id`` handed to this executor (the one scheduled at
        ``run_time``, when given). One not yet published ends ``TASK_CANCELLED`` at once
        and is never published; a published one is revoked at the workers (by the
        executor's thread; this call reads at most whether the runs started, see
        :meth:`_already_started`) and ends ``TASK_CANCELLED`` when the workers report it
        dropped. What a worker had already started is the backend's to
        stop or not (see the subclass): one known to have started and not stoppable is
        not counted (a warning says so); one that runs to its end anyway is reported as it
        ended, with a warning. Returns how many runs were asked to be cancelled."""
        with self._instances_lock:
            runs = [
                run
                for run in self._known.values()
                if run.task_id == task_id
                and (run_time is None or run.run_time == run_time)
                and run.cancelled is None
            ]
        sent = [run for run in runs if run.sent_at is not None]
        started = self._already_started(sent) if sent else set()
        for key in sorted(started):
            self.logger.warning(
                "run %s has started at a worker, which cannot be stopped from here: it goes "
                "on to its end",
                key,
            )
        with self._instances_lock:
            runs = [run for run in runs if run.key not in started and run.cancelled is None]
            for run in runs:
                run.cancelled = reason
        if runs:
            self._inbox.put(None)  # wake the thread
        return len(runs)

    def _already_started(self, runs: list[EnqueuedRun]) -> set[str]:
        """The keys of ``runs`` (published) a worker has started and the backend cannot
        stop, as far as one cheap read can tell; the default knows of none."""
        return set()

    def _uncancelled(self, pending: list[EnqueuedRun]) -> list[EnqueuedRun]:
        """End the cancelled runs among those not yet published; return the others."""
        kept = []
        for run in pending:
            if run.cancelled is None:
                kept.append(run)
            else:
                self._cancelled(run)
        return kept

    def _revoke_cancelled(self) -> None:
        runs = [run for run in self._followed.values() if run.cancelled and not run.revoked]
        if not runs:
            return
        try:
            self._revoke(runs)
        except Exception as exc:
            self.logger.warning(
                "could not ask the workers to drop %d cancelled run(s) (%s); trying again",
                len(runs),
                exc,
            )
            return
        for run in runs:
            run.revoked = True
