"""Send runs to a Celery worker fleet instead of running them here.

The scheduler only *enqueues*: each run becomes one Celery message whose task id is the
run's key ``"{task_id}@{scheduled_utc}"`` (:func:`run_key`), so every copy of one slot's
message carries the same id and a worker can recognise a duplicate. The run's record
follows the Celery state in the result backend to its outcome (``TASK_EXECUTED``,
``TASK_ERROR``, ``TASK_TIMEOUT``), so ``max_instances`` counts runs enqueued and not yet
finished by a worker, and a shared store's run lease stays held until then.

Why the order *publish, then mark sent*: after the broker confirmed a message, the
executor writes a "sent" marker for the key in the result backend. A scheduler that
takes over a run from a dead one (the lease expired) asks for the marker first and only
publishes when there is none, then follows the same key. A slot is published twice only
when a scheduler dies between the broker's confirm and the marker write, or when the
broker connection breaks before a confirm came back (the message may have arrived: it is
sent again). Every copy has the same id, and the worker task
(:mod:`tickwork.executors.celery_worker`) drops all but the first. The reverse order
(marker first) would instead lose the run in the first window.

All broker and backend I/O happens on one thread of the executor's own, never on the
scheduler's event loop; a broker that does not answer is retried with backoff while the
run keeps its slot (and its lease).
"""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT, TaskExecutionEvent
from tickwork.exceptions import (
    CeleryTaskNotRegisteredError,
    ConfigurationError,
    InvalidTaskError,
    MissingDependencyError,
)
from tickwork.executors._keys import run_key
from tickwork.executors.base import BaseExecutor, ExecutorHost, run_log_extra
from tickwork.tasks import Task
from tickwork.utils import ref_to_obj

try:
    import celery
    from celery.backends.base import BaseKeyValueStoreBackend as KeyValueStoreBackend
    from kombu.exceptions import EncodeError
    from kombu.serialization import dumps as kombu_dumps
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        "celery", "CeleryExecutor", "pip install 'tickwork[celery]'"
    ) from exc

__all__ = ["WORKER_TASK_NAME", "CeleryExecutor", "run_key"]

#: The name of the worker task that calls a task's ``"module:function"`` reference
#: (registered on a worker app by :func:`tickwork.executors.celery_worker.register`).
WORKER_TASK_NAME = "tickwork.run"

#: The prefix of the "sent" markers in the result backend.
SENT_PREFIX = "tickwork-celery-sent-"

#: Seconds between two attempts to reach a broker that did not answer (the last repeats).
SEND_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)

#: Celery states after which a run is over.
_FINAL = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

#: Exception class names Celery reports for a run past its time limit.
_TIME_LIMITS = frozenset({"TimeLimitExceeded", "SoftTimeLimitExceeded"})


@dataclass(slots=True)
class _Run:
    """One run handed to the executor: unsent, then followed until its outcome."""

    task_id: str
    store: str | None
    run_time: datetime
    key: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    sent_at: float | None = None


class CeleryExecutor(BaseExecutor):
    """Enqueue each run as a Celery task (see the module docstring for the guarantee).

    ``app`` is a :class:`celery.Celery` application, its ``"module:attribute"``
    reference, or a broker URL (then ``backend`` is the result backend's URL). A task
    whose function is a Celery task (``@app.task``) is sent as that task; any other
    function goes to the worker task ``tickwork.run`` with its ``"module:function"``
    reference. ``queue`` routes every message of this executor; ``poll_interval`` is how
    often the result backend is read for outcomes.

    Celery does the timeouts (a task's ``timeout`` becomes the message's
    ``soft_time_limit``, and ``time_limit`` a second later; Celery's prefork pool enforces
    them, its solo pool does not). tickwork's own ``retries`` cannot be kept per key, and
    are refused: use Celery's ``autoretry_for`` on the Celery task.
    """

    def __init__(
        self,
        app: Any = None,
        backend: str | None = None,
        queue: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__()
        if app is None:
            raise ConfigurationError(
                "CeleryExecutor needs app: a Celery app, its 'module:attribute' reference "
                "or a broker URL"
            )
        if poll_interval <= 0:
            raise ConfigurationError(f"poll_interval must be positive, got {poll_interval!r}")
        self.app: celery.Celery = _make_app(app, backend)
        self.queue = queue
        self.poll_interval = poll_interval
        result_backend = self.app.backend
        if not isinstance(result_backend, KeyValueStoreBackend):
            raise ConfigurationError(
                f"CeleryExecutor needs a key-value result backend (redis://, ...) to follow "
                f"runs to their outcome and mark them sent; app {self.app.main!r} has "
                f"{type(result_backend).__name__}"
            )
        self._backend: KeyValueStoreBackend = result_backend
        self._unsent: queues.SimpleQueue[_Run | None] = queues.SimpleQueue()
        self._followed: dict[str, _Run] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: ExecutorHost, alias: str) -> None:
        """Start the thread that publishes runs and follows them."""
        super().start(host, alias)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._work, name=f"tickwork-celery-{alias}", daemon=True
        )
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop sending. Runs already enqueued go on at the workers; with ``wait`` the
        runs not yet sent are tried once more before the thread stops. A run whose outcome
        is not known here keeps its store record, so a scheduler of the fleet takes it
        over and follows the same key (it is not sent again)."""
        self._stop_accepting()
        self._stop.set()
        self._unsent.put(None)
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
        """Refuse at ``add_task`` what cannot go to Celery: arguments its serializer
        cannot encode, and tickwork retries (see the class docstring)."""
        if task._profile.policy.retries:
            raise InvalidTaskError(
                f"task {task.id!r}: retries={task._profile.policy.retries} cannot be kept by "
                "CeleryExecutor (a retry would reuse the run's key); let Celery retry it "
                "(autoretry_for= on the Celery task)"
            )
        serializer = self.app.conf.task_serializer
        try:
            kombu_dumps((tuple(task.args), dict(task.kwargs)), serializer=serializer)  # type: ignore[no-untyped-call]
        except (EncodeError, TypeError, ValueError) as exc:
            raise InvalidTaskError(
                f"task {task.id!r}: its args/kwargs cannot be sent to Celery with the "
                f"{serializer!r} serializer: {exc}"
            ) from None

    # -- sending --------------------------------------------------------------------------

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        """Queue each run for the sending thread (never blocks on the broker)."""
        if self._thread is None:
            raise ConfigurationError(f"executor {self.alias!r} is not started")
        name, args = _celery_call(task)
        options: dict[str, Any] = {}
        timeout = task._profile.policy.timeout
        if timeout:
            options = {"soft_time_limit": timeout, "time_limit": timeout + 1.0}
        if self.queue is not None:
            options["queue"] = self.queue
        # More than one run time (a backlog not coalesced) is one message per run: each
        # slot has its own key. They share the instance slot of max_instances.
        for run_time in run_times:
            self._unsent.put(
                _Run(
                    task.id,
                    task.store_alias,
                    run_time,
                    run_key(task.id, run_time),
                    name,
                    args,
                    dict(task.kwargs),
                    options,
                )
            )
        with self._instances_lock:
            # One message per run, one instance for them all: the instance count goes back
            # when the last of them ends (see _ended).
            self._instances[task.id] += len(run_times) - 1

    def _work(self) -> None:
        """The executor's thread: publish what is queued, read outcomes, repeat."""
        self._check_broker()
        pending: list[_Run] = []
        failures = 0
        retry_at = 0.0
        while not self._stop.is_set() or pending:
            timeout = self.poll_interval if self._followed or pending else 1.0
            pending.extend(self._drain(timeout))
            if self._stop.is_set() and not pending:
                break
            if pending and time.monotonic() >= retry_at:
                pending, error = self._publish_all(pending)
                if error is not None:
                    delay = SEND_BACKOFF[min(failures, len(SEND_BACKOFF) - 1)]
                    failures += 1
                    retry_at = time.monotonic() + delay
                    self.logger.error(
                        "executor %r cannot reach the Celery broker %s (%s); %d run(s) are "
                        "kept and sent when it answers (next try in %.1f s)",
                        self.alias,
                        self._broker_uri(),
                        error,
                        len(pending),
                        delay,
                    )
                    if self._stop.is_set():
                        break
                else:
                    failures = 0
            self._poll()

    def _check_broker(self) -> None:
        """Say at start (on this thread: the scheduler's start never waits for it) when
        the broker does not answer; runs are kept and sent once it does."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            self.logger.error(
                "executor %r: the Celery broker %s does not answer at start (%s); runs are "
                "kept and sent when it answers, retried with backoff",
                self.alias,
                self._broker_uri(),
                exc,
            )

    def _broker_uri(self) -> str:
        """The broker's URL with its password masked (for log lines)."""
        with self.app.connection_for_write() as connection:
            return str(connection.as_uri())

    def _drain(self, timeout: float) -> list[_Run]:
        runs: list[_Run] = []
        try:
            item = self._unsent.get(timeout=timeout)
            while True:
                if item is not None:
                    runs.append(item)
                item = self._unsent.get_nowait()
        except queues.Empty:
            return runs

    def _publish_all(self, runs: list[_Run]) -> tuple[list[_Run], Exception | None]:
        """Publish ``runs`` in order; return those left (from the first failure) and the
        broker's error."""
        known = self._registered()
        index = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for index, run in enumerate(runs):  # noqa: B007 (read after a failure)
                    if known is not None and run.name not in known:
                        self._unknown_task(run, known)
                        continue
                    self._publish(run, producer)
        except Exception as exc:  # the broker (or backend) did not answer
            return runs[index:], exc
        return [], None

    def _registered(self) -> set[str] | None:
        """The Celery task names the app knows, or None when it knows none of its own
        (an app built from a URL: only the workers know their tasks)."""
        names = {name for name in self.app.tasks if not name.startswith("celery.")}
        return names | {WORKER_TASK_NAME} if names else None

    def _publish(self, run: _Run, producer: Any) -> None:
        """Send one run unless its key is marked sent (a run taken over from a dead
        scheduler), then follow it."""
        marker = SENT_PREFIX + run.key
        if self._backend.get(marker) is None:
            self.app.send_task(
                run.name,
                args=run.args,
                kwargs=run.kwargs,
                task_id=run.key,
                producer=producer,
                retry=False,
                **run.options,
            )
            self._backend.set(marker, b"1")
        else:
            self.logger.info(
                "run %s was sent by another scheduler: following it, not sending it again",
                run.key,
                extra=run_log_extra(run.task_id, run.run_time),
            )
        run.sent_at = time.monotonic()
        self._followed[run.key] = run

    def _unknown_task(self, run: _Run, known: set[str]) -> None:
        """A run for a Celery task the app does not know: an error event naming it; the
        task stays in its store (its next runs are tried again)."""
        exc = CeleryTaskNotRegisteredError(run.name, self.app.main or "", sorted(known))
        self._ended(run, TASK_ERROR, exception=exc, traceback=str(exc))

    # -- following ------------------------------------------------------------------------

    def _poll(self) -> None:
        """Read the result backend for every followed run; report those that ended."""
        if not self._followed:
            return
        keys = list(self._followed)
        try:
            values = self._backend.mget([self._backend.get_key_for_task(key) for key in keys])
        except Exception as exc:
            self.logger.warning("could not read Celery results (%s); trying again", exc)
            return
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            meta = self._backend.decode_result(value)
            if meta.get("status") in _FINAL:
                run = self._followed.pop(key, None)
                if run is not None:  # (None: shutdown() let it go meanwhile)
                    self._report(run, meta)

    def _report(self, run: _Run, meta: dict[str, Any]) -> None:
        result = meta.get("result")
        if meta["status"] == "SUCCESS":
            self._ended(run, TASK_EXECUTED, return_value=result)
            return
        exc = result if isinstance(result, BaseException) else RuntimeError(str(result))
        code = TASK_TIMEOUT if type(exc).__name__ in _TIME_LIMITS else TASK_ERROR
        self._ended(run, code, exception=exc, traceback=meta.get("traceback") or repr(exc))

    def _ended(self, run: _Run, code: int, **fields: Any) -> None:
        duration = None if run.sent_at is None else time.monotonic() - run.sent_at
        event = TaskExecutionEvent(
            code, run.task_id, run.store, run.run_time, duration=duration, **fields
        )
        self._run_finished(run.task_id, [event])


def _make_app(app: Any, backend: str | None) -> celery.Celery:
    if isinstance(app, celery.Celery):
        return app
    if isinstance(app, str) and "://" in app:
        if backend is None:
            raise ConfigurationError(
                f"CeleryExecutor with the broker URL {app!r} needs backend= (a result "
                "backend URL such as 'redis://127.0.0.1:6379/5')"
            )
        made = celery.Celery("tickwork", broker=app, backend=backend)
        # Publisher confirms: a message counts as sent only once the broker has it.
        made.conf.broker_transport_options = {"confirm_publish": True}
        return made
    if isinstance(app, str):
        found = ref_to_obj(app)
        if isinstance(found, celery.Celery):
            return found
        raise ConfigurationError(f"app {app!r} is a {type(found).__name__}, not a Celery app")
    raise ConfigurationError(
        f"app must be a Celery app, its 'module:attribute' reference or a broker URL, got {app!r}"
    )


def _celery_call(task: Task) -> tuple[str, tuple[Any, ...]]:
    """The Celery task name and positional arguments of ``task``'s runs."""
    fn = task._profile.fn
    if isinstance(fn, celery.Task):
        return fn.name, tuple(task.args)
    return WORKER_TASK_NAME, (task.fn_ref, *task.args)


logging.getLogger(__name__).addHandler(logging.NullHandler())
