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
from typing import Any, ClassVar

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT
from tickwork.exceptions import (
    CeleryTaskNotRegisteredError,
    ConfigurationError,
    InvalidTaskError,
    MissingDependencyError,
)
from tickwork.executors._enqueueing import EnqueuedRun, EnqueueingExecutor
from tickwork.executors._keys import run_key
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

from tickwork.executors.celery_worker import CLAIM_PREFIX

__all__ = ["WORKER_TASK_NAME", "CeleryExecutor", "run_key"]

#: The name of the worker task that calls a task's ``"module:function"`` reference
#: (registered on a worker app by :func:`tickwork.executors.celery_worker.register`).
WORKER_TASK_NAME = "tickwork.run"

#: The prefix of the "sent" markers in the result backend.
SENT_PREFIX = "tickwork-celery-sent-"

#: Celery states after which a run is over.
_FINAL = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

#: Exception class names Celery reports for a run past its time limit.
_TIME_LIMITS = frozenset({"TimeLimitExceeded", "SoftTimeLimitExceeded"})


class CeleryExecutor(EnqueueingExecutor):
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

    ``cancel_run`` revokes the run's message (``control.revoke``, never ``terminate``:
    Celery documents terminating as unsafe to call from a program, the worker process may
    have gone on to another task). A worker drops a revoked message it has not started,
    and the run ends ``TASK_CANCELLED``; one already running goes on to its end (and is
    not counted as cancelled when the executor can see it started: see
    :meth:`_already_started`).
    """

    verb = "sent"
    retry_hint = "); let Celery retry it (autoretry_for= on the Celery task)"
    _published_elsewhere: ClassVar[str] = "was sent by another scheduler"

    def __init__(
        self,
        app: Any = None,
        backend: str | None = None,
        queue: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        if app is None:
            raise ConfigurationError(
                "CeleryExecutor needs app: a Celery app, its 'module:attribute' reference "
                "or a broker URL"
            )
        super().__init__(poll_interval)
        self.app: celery.Celery = _make_app(app, backend)
        self.queue = queue
        result_backend = self.app.backend
        if not isinstance(result_backend, KeyValueStoreBackend):
            raise ConfigurationError(
                f"CeleryExecutor needs a key-value result backend (redis://, ...) to follow "
                f"runs to their outcome and mark them sent; app {self.app.main!r} has "
                f"{type(result_backend).__name__}"
            )
        self._backend: KeyValueStoreBackend = result_backend

    # -- what goes to Celery --------------------------------------------------------------

    def _check_arguments(self, task: Task) -> None:
        """Refuse arguments the app's serializer cannot encode."""
        serializer = self.app.conf.task_serializer
        try:
            kombu_dumps((tuple(task.args), dict(task.kwargs)), serializer=serializer)  # type: ignore[no-untyped-call]
        except (EncodeError, TypeError, ValueError) as exc:
            raise InvalidTaskError(
                f"task {task.id!r}: its args/kwargs cannot be sent to Celery with the "
                f"{serializer!r} serializer: {exc}"
            ) from None

    def _message(self, task: Task) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        name, args = _celery_call(task)
        options: dict[str, Any] = {}
        timeout = task._profile.policy.timeout
        if timeout:
            options = {"soft_time_limit": timeout, "time_limit": timeout + 1.0}
        if self.queue is not None:
            options["queue"] = self.queue
        return name, args, options

    def _open(self) -> None:
        """Say at start when the broker does not answer; runs are kept and sent once it
        does."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            self._not_answering_at_start(exc)

    def _where(self) -> str:
        """The broker's URL with its password masked (for log lines)."""
        with self.app.connection_for_write() as connection:
            return f"the Celery broker {connection.as_uri()}"

    # -- sending --------------------------------------------------------------------------

    def _publish_all(self, runs: list[EnqueuedRun]) -> tuple[list[EnqueuedRun], Exception | None]:
        """Publish ``runs`` in order; return those left (from the first failure) and the
        broker's error."""
        known = self._registered()
        index = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for index, run in enumerate(runs):  # noqa: B007 (read after a failure)
                    if known is not None and run.target not in known:
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

    def _publish(self, run: EnqueuedRun, producer: Any) -> None:
        """Send one run unless its key is marked sent (a run taken over from a dead
        scheduler), then follow it."""
        marker = SENT_PREFIX + run.key
        already_there = self._backend.get(marker) is not None
        if not already_there:
            self.app.send_task(
                run.target,
                args=run.args,
                kwargs=run.kwargs,
                task_id=run.key,
                producer=producer,
                retry=False,
                **run.options,
            )
            self._backend.set(marker, b"1")
        self._follow(run, already_there)

    def _unknown_task(self, run: EnqueuedRun, known: set[str]) -> None:
        """A run for a Celery task the app does not know: an error event naming it; the
        task stays in its store (its next runs are tried again)."""
        exc = CeleryTaskNotRegisteredError(run.target, self.app.main or "", sorted(known))
        self._ended(run, TASK_ERROR, exception=exc, traceback=str(exc))

    def _already_started(self, runs: list[EnqueuedRun]) -> set[str]:
        """The runs a worker has started: those of ``tickwork.run`` whose claim is written
        (it claims before it runs), and any in state ``STARTED`` (workers with
        ``task_track_started``). A backend that does not answer: none known."""
        keys = [run.key for run in runs]
        try:
            metas = self._backend.mget([self._backend.get_key_for_task(key) for key in keys])
            started = {
                key
                for key, meta in zip(keys, metas, strict=True)
                if meta is not None and self._backend.decode_result(meta).get("status") == "STARTED"
            }
            client = getattr(self._backend, "client", None)
            claimed = [run.key for run in runs if run.target == WORKER_TASK_NAME]
            if client is not None and claimed:
                marks = client.mget([CLAIM_PREFIX + key for key in claimed])
                started.update(key for key, mark in zip(claimed, marks, strict=True) if mark)
        except Exception as exc:
            self.logger.warning("could not read whether runs have started (%s)", exc)
            return set()
        return started

    def _revoke(self, runs: list[EnqueuedRun]) -> None:
        """Revoke the runs' messages at every worker (no ``terminate``: see the class
        docstring)."""
        self.app.control.revoke([run.key for run in runs])

    # -- following ------------------------------------------------------------------------

    def _poll(self) -> None:
        """Read the result backend for every followed run; report those that ended."""
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
                run = self._take(key)
                if run is not None:
                    self._report(run, meta)

    def _report(self, run: EnqueuedRun, meta: dict[str, Any]) -> None:
        result = meta.get("result")
        if meta["status"] == "SUCCESS":
            self._outcome(run, TASK_EXECUTED, False, return_value=result)
            return
        exc = result if isinstance(result, BaseException) else RuntimeError(str(result))
        code = TASK_TIMEOUT if type(exc).__name__ in _TIME_LIMITS else TASK_ERROR
        dropped = meta["status"] == "REVOKED"
        self._outcome(
            run, code, dropped, exception=exc, traceback=meta.get("traceback") or repr(exc)
        )


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
