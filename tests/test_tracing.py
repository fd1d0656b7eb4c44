"""tickwork.tracing: one span per run, outcome from the run's event, and the task's own
spans children of the run's span on the loop, in threads and in worker processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tickwork import AsyncIOScheduler, BackgroundScheduler
from tickwork.executors import ProcessPoolExecutor
from tickwork.tracing import instrument

#: The provider of the task's own spans in the tests (in-process runs).
CHILDREN = TracerProvider()
CHILD_SPANS = InMemorySpanExporter()
CHILDREN.add_span_processor(SimpleSpanProcessor(CHILD_SPANS))


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def runs_of(exporter: InMemorySpanExporter, task_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.attributes is not None and span.attributes.get("tickwork.task.id") == task_id
    ]


def attribute(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(name)


def make_child() -> None:
    with CHILDREN.get_tracer("task").start_as_current_span("inside"):
        pass


def fail() -> None:
    raise ValueError("broken on purpose")


def hang() -> None:
    time.sleep(0.6)


def current_ids() -> tuple[int, int]:
    """In a worker process: the trace and span id of the span current there."""
    context = trace.get_current_span().get_span_context()
    return context.trace_id, context.span_id


async def current_ids_async() -> tuple[int, int]:
    await asyncio.sleep(0)
    return current_ids()


def test_threads_carry_the_run_span_and_outcomes_are_set() -> None:
    tracer_provider, exporter = provider()
    scheduler = BackgroundScheduler()
    instrument(scheduler, tracer_provider)
    scheduler.add_task(make_child, id="child", name="makes a child")
    scheduler.add_task(fail, id="fail")
    scheduler.add_task(hang, id="hang", timeout=0.1)
    with scheduler:
        wait_for(
            lambda: all(runs_of(exporter, t) for t in ("child", "fail", "hang")), "three spans"
        )
    (run,) = runs_of(exporter, "child")
    assert run.name == "run makes a child"
    assert attribute(run, "tickwork.task.name") == "makes a child"
    assert attribute(run, "tickwork.run.outcome") == "success"
    assert attribute(run, "tickwork.run.attempt") == 1
    assert str(attribute(run, "tickwork.run.id")).startswith("child@")
    assert attribute(run, "tickwork.run.lateness_seconds") >= 0
    assert run.status.status_code is StatusCode.UNSET
    children = [s for s in CHILD_SPANS.get_finished_spans() if s.name == "inside"]
    assert run.context is not None
    assert any(
        child.parent is not None and child.parent.span_id == run.context.span_id
        for child in children
    )
    (failed,) = runs_of(exporter, "fail")
    assert attribute(failed, "tickwork.run.outcome") == "error"
    assert attribute(failed, "error.type") == "ValueError"
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]
    (hung,) = runs_of(exporter, "hang")  # ended at the deadline; the thread went on
    assert attribute(hung, "tickwork.run.outcome") == "timeout"
    assert attribute(hung, "error.type") == "RunTimeoutError"


async def test_coroutines_carry_the_run_span_retries_and_timeouts() -> None:
    tracer_provider, exporter = provider()
    scheduler = AsyncIOScheduler(timezone="UTC")
    instrument(scheduler, tracer_provider)
    tries = 0
    seen: list[int] = []

    async def flaky() -> None:
        nonlocal tries
        tries += 1
        seen.append(trace.get_current_span().get_span_context().span_id)
        if tries == 1:
            raise ConnectionError("down")

    async def stuck() -> None:
        await asyncio.sleep(3600)

    scheduler.start()
    try:
        scheduler.add_task(flaky, id="flaky", retries=1, retry_delay=0.05)
        scheduler.add_task(stuck, id="stuck", timeout=0.1)
        while len(runs_of(exporter, "flaky")) < 2 or not runs_of(exporter, "stuck"):
            await asyncio.sleep(0.02)
    finally:
        await scheduler.shutdown_async()
    first, second = sorted(runs_of(exporter, "flaky"), key=lambda s: s.start_time or 0)
    assert (attribute(first, "tickwork.run.attempt"), attribute(first, "tickwork.run.outcome")) == (
        1,
        "error",
    )
    assert attribute(second, "tickwork.run.attempt") == 2
    assert attribute(second, "tickwork.run.outcome") == "success"
    assert str(attribute(second, "tickwork.run.id")).endswith("#2")
    # The task saw its own run's span as the current one, each attempt its own.
    assert first.context is not None
    assert second.context is not None
    assert seen == [first.context.span_id, second.context.span_id]
    (stuck_run,) = runs_of(exporter, "stuck")
    assert attribute(stuck_run, "tickwork.run.outcome") == "timeout"
    assert stuck_run.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("fn", [current_ids, current_ids_async], ids=["plain", "async"])
def test_a_worker_process_runs_under_the_span_of_its_run(fn: Any) -> None:
    tracer_provider, exporter = provider()
    scheduler = BackgroundScheduler(executors={"default": ProcessPoolExecutor(max_workers=1)})
    instrument(scheduler, tracer_provider)
    results: list[Any] = []
    scheduler.add_listener(lambda event: results.append(event.return_value), 2**12)
    scheduler.add_task(fn, id="remote")
    with scheduler:
        wait_for(lambda: bool(runs_of(exporter, "remote")) and bool(results), "the run")
    (run,) = runs_of(exporter, "remote")
    assert run.context is not None
    assert attribute(run, "tickwork.run.outcome") == "success"
    # The span current in the worker is the parent's run span, carried as traceparent.
    assert results == [(run.context.trace_id, run.context.span_id)]


def test_uninstrument_stops_tracing() -> None:
    tracer_provider, exporter = provider()
    scheduler = BackgroundScheduler()
    tracer = instrument(scheduler, tracer_provider)
    tracer.uninstrument()
    done = threading.Event()
    scheduler.add_task(done.set, id="plain")
    with scheduler:
        assert done.wait(10)
    assert exporter.get_finished_spans() == ()


def test_without_the_extra_the_error_names_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import tickwork.tracing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert "tickwork[otel]" in result.stdout


async def test_a_cancelled_run_ends_its_span_cancelled() -> None:
    tracer_provider, exporter = provider()
    scheduler = AsyncIOScheduler(timezone="UTC")
    instrument(scheduler, tracer_provider)

    async def long_export() -> None:
        await asyncio.sleep(3600)

    scheduler.start()
    try:
        scheduler.add_task(long_export, id="export")
        running: list[Any] = []
        while not running:
            await asyncio.sleep(0.02)
            running = await scheduler.get_runs_async("export", outcome="running")
        assert await scheduler.cancel_run_async(running[0].run_id)
        while not runs_of(exporter, "export"):
            await asyncio.sleep(0.02)
    finally:
        await scheduler.shutdown_async()
    (run,) = runs_of(exporter, "export")
    assert attribute(run, "tickwork.run.outcome") == "cancelled"
    assert attribute(run, "error.type") == "RunCancelledError"
    assert run.status.status_code is StatusCode.ERROR
