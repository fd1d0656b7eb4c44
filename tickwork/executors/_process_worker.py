"""What runs in a worker process of the process pool (:mod:`tickwork.executors._processes`).

The parent sends a worker one instance at a time: ``(task_id, store, fn, args, kwargs,
run_times)``, pickled; ``None`` tells it to end. The worker answers with one message per
run time, the list of that run's events, as soon as the run ends: so the parent knows
when each run of an instance ends and the next begins, and times each one on its own.
A job it cannot load (the task's function cannot be imported here) is answered with the
exception instead. Nothing is logged here: the parent writes the runs' lines.
"""

from __future__ import annotations

import contextlib
import traceback as tb
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler

from tickwork.events import TASK_ERROR, TaskExecutionEvent
from tickwork.executors.base import _call_per_run

__all__ = ["serve"]


def serve(conn: Connection) -> None:
    """The main function of a worker process: run the instances the parent sends, one
    message back per run time (its events), until told to stop or the parent is gone."""
    while True:
        try:
            data = conn.recv_bytes()
        except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the
            continue  # parent decides when its workers end
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            job = ForkingPickler.loads(data)
        except BaseException as exc:  # e.g. the task's function cannot be imported here
            _send(conn, exc)
            continue
        if job is None:
            return
        task_id, store, fn, args, kwargs, run_times = job
        for run_time in run_times:
            events: list[TaskExecutionEvent] = []
            # SystemExit & co. from the task: reported in events; this worker goes on.
            with contextlib.suppress(BaseException):
                _call_per_run(task_id, store, fn, args, kwargs, [run_time], events, None)
            _send(conn, events)


def _send(conn: Connection, message: list[TaskExecutionEvent] | BaseException) -> None:
    """Send a run's events (or a failure to load the job) to the parent; what cannot be
    pickled (a return value, an exception) is replaced by an error saying so."""
    try:
        data = ForkingPickler.dumps(message)
    except Exception as exc:
        data = ForkingPickler.dumps(_picklable(message, exc))
    conn.send_bytes(data)


def _picklable(
    message: list[TaskExecutionEvent] | BaseException, exc: Exception
) -> list[TaskExecutionEvent] | BaseException:
    if isinstance(message, BaseException):
        return RuntimeError(f"the job could not be loaded in the worker process: {message!r}")
    events = []
    for event in message:
        try:
            ForkingPickler.dumps(event)
        except Exception:
            what = "exception" if event.exception is not None else "return value"
            error = TypeError(
                f"the run's {what} cannot be sent back from the worker process: {exc}"
            )
            text = "".join(tb.format_exception_only(error))
            event = TaskExecutionEvent(
                TASK_ERROR,
                event.task_id,
                event.store,
                event.scheduled_run_time,
                exception=error,
                traceback=f"{event.traceback or ''}{text}",
                duration=event.duration,
            )
        events.append(event)
    return events
