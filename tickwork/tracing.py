"""OpenTelemetry tracing of runs (extra ``tickwork[otel]``): one span per run.

``instrument(scheduler)`` sets a run hook on the scheduler (see
:meth:`~tickwork.schedulers.base.BaseScheduler.set_run_hook`) and listens to its run
events. The hook replaces the function of each instance on its way to its executor by a
wrapper that opens the run's span where the run happens and makes it current there, so
spans the task makes are its children:

* a coroutine on the scheduler's loop: the span is current in the run's asyncio task;
* a function in a thread pool: the span is current in the worker thread while it runs;
* a function in a process pool: the wrapper is pickled as the span's W3C
  ``traceparent`` and the function; the worker process attaches that context around the
  call (its spans go to the worker's own tracer provider, if it has one).

The span ends when the run's event comes (``TASK_EXECUTED``, ``TASK_ERROR``,
``TASK_TIMEOUT``, ``TASK_CANCELLED``), which sets its outcome: so a thread past its
``timeout`` has its span ended ``timeout`` at the deadline, though the thread goes on.

A function rather than a scheduler keyword: it works on any scheduler already built,
keeps OpenTelemetry out of the scheduler's signature and imports, and with tracing off
the scheduler's whole cost is one attribute check per instance sent.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

from tickwork.exceptions import MissingDependencyError

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # tested in a subprocess that hides opentelemetry
    raise MissingDependencyError(
        "opentelemetry", "tickwork.tracing", "pip install 'tickwork[otel]'"
    ) from exc

from tickwork._run_hook import RunHook
from tickwork._task_fields import is_coroutine_function
from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
    TaskExecutionEvent,
)
from tickwork.runs import make_run_id
from tickwork.tasks import Task

__all__ = ["RunTracer", "TracingTarget", "instrument"]

_OUTCOMES = {
    TASK_EXECUTED: "success",
    TASK_ERROR: "error",
    TASK_TIMEOUT: "timeout",
    TASK_CANCELLED: "cancelled",
}
_MASK = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
_PROPAGATOR = TraceContextTextMapPropagator()


class TracingTarget(Protocol):
    """What :func:`instrument` needs of a scheduler."""

    def set_run_hook(self, hook: RunHook | None) -> None: ...

    def add_listener(self, callback: Any, mask: int = ...) -> None: ...

    def remove_listener(self, callback: Any) -> None: ...


class RunTracer:
    """The run hook and event listener :func:`instrument` installs; :meth:`uninstrument`
    takes them off again."""

    def __init__(self, scheduler: TracingTarget, tracer_provider: TracerProvider | None) -> None:
        self._scheduler = scheduler
        self.tracer = trace.get_tracer("tickwork", tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        #: Open spans by (task id, scheduled time), until the run's event ends them.
        self._open: dict[tuple[str, datetime], Span] = {}

    # -- the hook ------------------------------------------------------------------------

    def wrap(self, task: Task, run_times: list[datetime], attempt: int) -> Task:
        """A copy of ``task`` whose function opens each run's span (see the module).

        The wrapper is a ``functools.partial`` of a module-level function: executors see
        through partials whether it is a coroutine function, and a process pool pickles
        it by reference (the runs pickle as their spans' ``traceparent`` headers)."""
        profile = task._profile
        fn = profile.fn
        runs = _Runs(self, task.id, task.name, list(run_times), attempt)
        call = _traced_coroutine if is_coroutine_function(fn) else _traced_call
        clone = task._shallow_copy()
        clone._profile = profile._replace(fn=functools.partial(call, fn, runs))
        return clone

    def start_span(self, runs: _Runs) -> Span:
        """Open the span of the next run of ``runs`` and keep it until its event."""
        run_time = runs.next_run_time()
        started = time.time()
        span = self.tracer.start_span(
            f"run {runs.task_name}",
            attributes={
                "tickwork.task.id": runs.task_id,
                "tickwork.task.name": runs.task_name,
                "tickwork.run.id": make_run_id(runs.task_id, run_time, runs.attempt),
                "tickwork.run.attempt": runs.attempt,
                "tickwork.run.scheduled_time": run_time.isoformat(),
                "tickwork.run.lateness_seconds": max(0.0, started - run_time.timestamp()),
            },
        )
        with self._lock:
            self._open[runs.task_id, run_time] = span
        return span

    # -- the listener --------------------------------------------------------------------

    def on_event(self, event: TaskExecutionEvent) -> None:
        """End the span of the run ``event`` reports, with its outcome."""
        with self._lock:
            span = self._open.pop((event.task_id, event.scheduled_run_time), None)
        if span is None:
            return  # a run that never started (or started before instrument())
        outcome = _OUTCOMES[event.code]
        span.set_attribute("tickwork.run.outcome", outcome)
        exc = event.exception
        if exc is not None:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{outcome}: {exc}"))
        span.end()

    def uninstrument(self) -> None:
        """Stop tracing: no hook, no listener; spans still open are ended unset."""
        self._scheduler.set_run_hook(None)
        self._scheduler.remove_listener(self.on_event)
        with self._lock:
            spans, self._open = list(self._open.values()), {}
        for span in spans:
            span.end()


class _Runs:
    """The runs of one instance, handed out in order: an executor calls the function
    once per run time, one after the other."""

    __slots__ = ("_index", "attempt", "run_times", "task_id", "task_name", "tracer")

    def __init__(
        self, tracer: RunTracer, task_id: str, name: str, run_times: list[datetime], attempt: int
    ) -> None:
        self.tracer = tracer
        self.task_id = task_id
        self.task_name = name
        self.run_times = run_times
        self.attempt = attempt
        self._index = 0

    def next_run_time(self) -> datetime:
        run_time = self.run_times[min(self._index, len(self.run_times) - 1)]
        self._index += 1
        return run_time

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Open the next run's span and make it current for the block."""
        span = self.tracer.start_span(self)
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled for a worker process: the spans are opened here, in the parent (their
        events come back here), and only their contexts travel."""
        carriers = []
        for _ in self.run_times:
            span = self.tracer.start_span(self)
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
            carriers.append(carrier)
        return _RemoteRuns, (carriers,)


class _RemoteRuns:
    """In a worker process: the ``traceparent`` of each run's span, attached in turn."""

    def __init__(self, carriers: list[dict[str, str]]) -> None:
        self.carriers = carriers
        self._index = 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        carrier = self.carriers[min(self._index, len(self.carriers) - 1)]
        self._index += 1
        token = otel_context.attach(_PROPAGATOR.extract(carrier))
        try:
            yield
        finally:
            otel_context.detach(token)


def _traced_call(
    fn: Callable[..., Any], runs: _Runs | _RemoteRuns, /, *args: Any, **kwargs: Any
) -> Any:
    """A plain function's run, with its span current."""
    with runs.enter():
        return fn(*args, **kwargs)


async def _traced_coroutine(
    fn: Callable[..., Any], runs: _Runs | _RemoteRuns, /, *args: Any, **kwargs: Any
) -> Any:
    """An ``async def`` function's run, with its span current in the run's task (in a
    process pool's worker: in the task ``asyncio.run`` makes of it)."""
    with runs.enter():
        return await fn(*args, **kwargs)


def instrument(
    scheduler: TracingTarget, tracer_provider: TracerProvider | None = None
) -> RunTracer:
    """Trace every run of ``scheduler`` from now on: a span per run (see the module),
    made with ``tracer_provider`` (default: OpenTelemetry's global one). Returns the
    :class:`RunTracer`; its ``uninstrument()`` stops it."""
    tracer = RunTracer(scheduler, tracer_provider)
    scheduler.add_listener(tracer.on_event, _MASK)
    scheduler.set_run_hook(tracer)
    return tracer
