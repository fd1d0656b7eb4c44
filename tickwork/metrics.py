"""Prometheus metrics of a scheduler (extra ``tickwork[metrics]``).

:class:`SchedulerMetrics` listens to a scheduler's events and, at scrape time, reads its
tasks for the per-task gauges. It is a ``prometheus_client`` collector: register it on a
registry of your own, or serve it with :func:`metrics_app`, an ASGI app answering
``GET /metrics``.

Cardinality is bounded on purpose. A scheduler may hold 100,000 tasks; a series per
task (and per outcome, and per histogram bucket) would swamp Prometheus and make every
scrape read the whole store. So:

* the histograms carry no task label at all;
* ``tickwork_task_runs_total`` labels the first ``max_task_series`` task ids it sees by
  id and counts every later task under ``task="_other"``;
* the per-task gauges (next run, last success) are read at scrape time, for at most
  ``max_task_series`` tasks (the ones due soonest); ``per_task_gauges=False`` turns the
  read off entirely, for stores too large to list on every scrape.
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs

from tickwork.exceptions import ConfigurationError, MissingDependencyError

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import Collector
except ImportError as exc:  # tested in a subprocess that hides prometheus_client
    raise MissingDependencyError(
        "prometheus_client", "tickwork.metrics", "pip install 'tickwork[metrics]'"
    ) from exc

from tickwork.events import (
    STORE_RECOVERED,
    STORE_UNAVAILABLE,
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_RETRY,
    TASK_SET_ASIDE,
    TASK_SUBMITTED,
    TASK_TIMEOUT,
)
from tickwork.tasks import Task

__all__ = ["DEFAULT_BUCKETS", "OTHER_TASKS", "MetricsSource", "SchedulerMetrics", "metrics_app"]

#: Seconds; from a millisecond to ten minutes (runs and lateness alike).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
)

#: The outcome label of each run event.
_OUTCOMES = {
    TASK_EXECUTED: "success",
    TASK_ERROR: "error",
    TASK_TIMEOUT: "timeout",
    TASK_CANCELLED: "cancelled",
    TASK_MISSED: "missed",
    TASK_MAX_INSTANCES: "max_instances",
    TASK_SET_ASIDE: "set_aside",
}
#: Outcomes of runs that were submitted: each ends one run in progress.
_FINISHED = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT | TASK_CANCELLED
_MASK = (
    _FINISHED
    | TASK_MISSED
    | TASK_MAX_INSTANCES
    | TASK_SET_ASIDE
    | TASK_SUBMITTED
    | TASK_RETRY
    | STORE_UNAVAILABLE
    | STORE_RECOVERED
)
#: The task label of the tasks past ``max_task_series``.
OTHER_TASKS = "_other"


class MetricsSource(Protocol):
    """What :class:`SchedulerMetrics` needs of a scheduler: its events and its tasks."""

    def add_listener(self, callback: Any, mask: int = ...) -> None: ...

    def remove_listener(self, callback: Any) -> None: ...

    def get_tasks(self, store: str | None = None) -> list[Task]: ...


class _Histogram:
    """A label-less histogram kept by hand (the collector builds its families itself)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": bisect_left finds that bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """The cumulative buckets (``le`` label, count) and the sum, as of now."""
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        return buckets, self.total


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class SchedulerMetrics(Collector):
    """The metrics of one scheduler, as a ``prometheus_client`` collector.

    ``SchedulerMetrics(scheduler)`` starts listening at once; ``registry`` (optional)
    registers it there too. ``max_task_series`` bounds the task label values (see the
    module docstring), ``per_task_gauges`` turns the scrape-time read of the tasks on or
    off, ``buckets`` sets the histograms' bounds (seconds). :meth:`close` stops
    listening and unregisters it.
    """

    def __init__(
        self,
        scheduler: MetricsSource,
        registry: CollectorRegistry | None = None,
        *,
        max_task_series: int = 1000,
        per_task_gauges: bool = True,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if isinstance(max_task_series, bool) or not isinstance(max_task_series, int):
            raise ConfigurationError(
                f"max_task_series must be an int >= 0, got {max_task_series!r}"
            )
        if max_task_series < 0:
            raise ConfigurationError(f"max_task_series must be >= 0, got {max_task_series!r}")
        if not buckets or any(not isinstance(b, int | float) or b <= 0 for b in buckets):
            raise ConfigurationError(
                f"buckets must be positive numbers of seconds, got {buckets!r}"
            )
        self._source = scheduler
        self._registry = registry
        self.max_task_series = max_task_series
        self.per_task_gauges = per_task_gauges
        # Listeners run on whatever thread produced the event; a scrape on another.
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], int] = {}
        self._labelled: set[str] = set()
        self._retries = 0
        self._in_progress = 0
        self._duration = {outcome: _Histogram(buckets) for outcome in _OUTCOMES.values()}
        self._lateness = _Histogram(buckets)
        self._last_success: dict[str, float] = {}
        self._store_errors: dict[str, int] = {}
        self._store_available: dict[str, bool] = {}
        scheduler.add_listener(self._on_event, _MASK)
        if registry is not None:
            registry.register(self)

    def close(self) -> None:
        """Stop listening to the scheduler and leave the registry given to ``__init__``."""
        self._source.remove_listener(self._on_event)
        if self._registry is not None:
            self._registry.unregister(self)
            self._registry = None

    # -- events -----------------------------------------------------------------------

    def _task_label(self, task_id: str) -> str:
        """The task label of ``task_id``: itself for the first ``max_task_series`` ids
        seen, ``_other`` after (called under the lock)."""
        if task_id in self._labelled:
            return task_id
        if len(self._labelled) < self.max_task_series:
            self._labelled.add(task_id)
            return task_id
        return OTHER_TASKS

    def _on_event(self, event: Any) -> None:
        code = event.code
        now = time.time()
        with self._lock:
            if code == TASK_SUBMITTED:
                self._in_progress += len(event.scheduled_run_times)
                return
            if code == TASK_RETRY:
                self._retries += 1
                return
            if code in (STORE_UNAVAILABLE, STORE_RECOVERED):
                alias = event.alias or "default"
                if code == STORE_UNAVAILABLE:
                    self._store_errors[alias] = self._store_errors.get(alias, 0) + 1
                self._store_available[alias] = code == STORE_RECOVERED
                return
            outcome = _OUTCOMES[code]
            runs = 1
            if code == TASK_MAX_INSTANCES:
                runs = len(event.scheduled_run_times)
            key = (self._task_label(event.task_id), outcome)
            self._runs[key] = self._runs.get(key, 0) + runs
            if not code & _FINISHED:
                return
            self._in_progress = max(0, self._in_progress - 1)
            duration = event.duration
            if duration is None:
                return  # cancelled before it started
            self._duration[outcome].observe(duration)
            # The event comes when the run ends: it started ``duration`` seconds ago.
            started = now - duration
            self._lateness.observe(max(0.0, started - event.scheduled_run_time.timestamp()))
            if code == TASK_EXECUTED:
                self._last_success[event.task_id] = now

    # -- scrape -----------------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        """The metric families, as of now (called by ``prometheus_client`` per scrape)."""
        with self._lock:
            runs = dict(self._runs)
            retries = self._retries
            in_progress = self._in_progress
            durations = {o: h.snapshot() for o, h in self._duration.items()}
            lateness = self._lateness.snapshot()
            last_success = dict(self._last_success)
            store_errors = dict(self._store_errors)
            store_available = dict(self._store_available)

        counter = CounterMetricFamily(
            "tickwork_task_runs",
            "Runs of tasks by outcome: success, error, timeout, cancelled, missed, "
            "max_instances (skipped), set_aside (the task was paused by the pass).",
            labels=["task", "outcome"],
        )
        for (task, outcome), value in sorted(runs.items()):
            counter.add_metric([task, outcome], value)
        yield counter

        yield CounterMetricFamily(
            "tickwork_run_retries", "Failed runs that will be tried again.", value=retries
        )
        yield GaugeMetricFamily(
            "tickwork_runs_in_progress", "Runs handed to executors, not ended yet.", in_progress
        )
        duration = HistogramMetricFamily(
            "tickwork_run_duration_seconds",
            "How long runs took, by outcome.",
            labels=["outcome"],
        )
        for outcome, (buckets, total) in durations.items():
            duration.add_metric([outcome], buckets, total)
        yield duration
        late = HistogramMetricFamily(
            "tickwork_run_lateness_seconds",
            "How long after its scheduled time each run started.",
        )
        late.add_metric([], *lateness)
        yield late

        errors = CounterMetricFamily(
            "tickwork_store_errors",
            "Streaks of failures of a store (one STORE_UNAVAILABLE event each).",
            labels=["store"],
        )
        for store, value in sorted(store_errors.items()):
            errors.add_metric([store], value)
        yield errors
        available = GaugeMetricFamily(
            "tickwork_store_available",
            "1 while the store answers, 0 while the scheduler backs off from it "
            "(for stores that failed at least once).",
            labels=["store"],
        )
        for store, up in sorted(store_available.items()):
            available.add_metric([store], 1.0 if up else 0.0)
        yield available

        if self.per_task_gauges and self.max_task_series:
            yield from self._task_gauges(last_success)

    def _task_gauges(self, last_success: dict[str, float]) -> Iterator[Any]:
        tasks = self._source.get_tasks()
        # The ones due soonest (paused ones last), at most max_task_series of them.
        far = float("inf")
        tasks.sort(
            key=lambda t: t.next_run_time.timestamp() if t.next_run_time is not None else far
        )
        shown = tasks[: self.max_task_series]
        count = GaugeMetricFamily("tickwork_tasks", "Tasks in the scheduler's stores.", len(tasks))
        yield count
        next_run = GaugeMetricFamily(
            "tickwork_task_next_run_timestamp_seconds",
            "When each task runs next (Unix time; absent while paused).",
            labels=["task", "name"],
        )
        success = GaugeMetricFamily(
            "tickwork_last_success_timestamp_seconds",
            "When each task's last successful run ended (Unix time), since this process started.",
            labels=["task", "name"],
        )
        for task in shown:
            if task.next_run_time is not None:
                next_run.add_metric([task.id, task.name], task.next_run_time.timestamp())
            when = last_success.get(task.id)
            if when is not None:
                success.add_metric([task.id, task.name], when)
        yield next_run
        yield success


def metrics_app(
    scheduler: MetricsSource | None = None,
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> Any:
    """An ASGI app serving the metrics (``GET /metrics``, or at the path it is mounted).

    Given a ``scheduler``, a :class:`SchedulerMetrics` for it is made (``options`` go to
    it) and registered on ``registry`` (a new one by default, so the process's default
    metrics are not mixed in); given only a ``registry``, that registry is served."""
    if registry is None:
        registry = CollectorRegistry()
    if scheduler is not None:
        SchedulerMetrics(scheduler, registry, **options)
    elif options:
        raise ConfigurationError(
            f"options {sorted(options)} need a scheduler: metrics_app(scheduler, ...)"
        )
    return _OffTheLoop(registry)


class _OffTheLoop:
    """An ASGI app serving ``registry`` like ``prometheus_client.make_asgi_app``, but
    collecting in a worker thread. The per-task gauges read the scheduler's stores at
    scrape time: prometheus_client's own app collects on the event loop, so mounted in
    the app whose loop runs an AsyncIOScheduler, a scrape of a slow or hung database
    (the very case metrics are for) would stop the scheduler with it.

    A daemon thread per scrape, one collecting at a time: not the loop's default
    executor, whose few threads a hung store would take one by one, and not a pool,
    whose threads would hold up the process's exit behind a hung store."""

    def __init__(self, registry: Collector) -> None:
        self._registry = registry
        self._one_at_a_time = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the metrics app serves HTTP only, not {scope['type']!r}")
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", ())}  # fmt: skip
        params = parse_qs(scope.get("query_string", b"").decode())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bytes, list[tuple[bytes, bytes]]]] = loop.create_future()

        def bake() -> None:
            with self._one_at_a_time:
                try:
                    found = self._bake(
                        headers.get("accept", ""), headers.get("accept-encoding", ""), params
                    )
                except BaseException as exc:
                    loop.call_soon_threadsafe(_settle, answer, None, exc)
                else:
                    loop.call_soon_threadsafe(_settle, answer, found, None)

        threading.Thread(target=bake, name="tickwork-metrics", daemon=True).start()
        body, response_headers = await answer
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    def _bake(
        self, accept: str, accept_encoding: str, params: dict[str, list[str]]
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        encoder, content_type = choose_encoder(accept)
        registry = self._registry
        if "name[]" in params and isinstance(registry, CollectorRegistry):
            registry = registry.restricted_registry(params["name[]"])
        body = encoder(registry)
        headers = [(b"content-type", content_type.encode())]
        if "gzip" in accept_encoding.lower():
            body = gzip.compress(body)
            headers.append((b"content-encoding", b"gzip"))
        return body, headers


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """(On the loop.) Give the scrape its answer, unless it is gone (the scraper hung up)."""
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
