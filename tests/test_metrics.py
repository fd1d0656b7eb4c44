"""tickwork.metrics: a real uvicorn server serves a real scheduler's metrics; the test
scrapes them over HTTP and parses them with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import servers
import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tickwork import AsyncIOScheduler, BackgroundScheduler
from tickwork.events import STORE_RECOVERED, STORE_UNAVAILABLE, SchedulerEvent
from tickwork.exceptions import ConfigurationError
from tickwork.metrics import OTHER_TASKS, SchedulerMetrics, metrics_app
from tickwork.triggers.base import BaseTrigger


def ok() -> str:
    return "fine"


def fail() -> None:
    raise ValueError("broken on purpose")


def slow() -> None:
    time.sleep(1.0)


class Exploding(BaseTrigger):
    """Fires once at ``run_at``; asked for the time after, it raises."""

    def __init__(self, run_at: datetime) -> None:
        self.run_at = run_at

    def get_next_trigger_time(
        self, timezone: Any, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        if previous_time is None:
            return self.run_at
        raise OverflowError("date value out of range")

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "run_at": self.run_at}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.run_at = state["run_at"]


def free_port() -> int:
    return servers.free_port()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Run an ASGI app under a real uvicorn on 127.0.0.1; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``url``/metrics, keyed by name and sorted labels."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_runs_of_each_outcome_are_counted_and_served(serve: Callable[[Any], str]) -> None:
    scheduler = BackgroundScheduler()
    registry = CollectorRegistry()
    metrics = SchedulerMetrics(scheduler, registry)
    url = serve(metrics_app(registry=registry))
    now = datetime.now(UTC)
    scheduler.add_task(ok, id="ok")
    scheduler.add_task(fail, id="fail")
    scheduler.add_task(slow, id="slow", timeout=0.1)
    scheduler.add_task(
        ok, "date", run_at=now - timedelta(hours=1), id="late", mistrigger_grace_time=1
    )
    scheduler.add_task(
        ok, "interval", hours=1, id="hourly", name="hourly report", next_run_time=now
    )
    scheduler.start()
    try:

        def outcomes() -> dict[tuple[str, str], float]:
            found = {}
            for (name, labels), value in scrape(url).items():
                if name == "tickwork_task_runs_total":
                    found[dict(labels)["task"], dict(labels)["outcome"]] = value
            return found

        expected = {
            ("ok", "success"): 1.0,
            ("fail", "error"): 1.0,
            ("slow", "timeout"): 1.0,
            ("late", "missed"): 1.0,
            ("hourly", "success"): 1.0,
        }
        wait_for(lambda: outcomes() == expected, f"the outcomes {expected}")
        samples = scrape(url)
        # (the slow thread goes on after its timeout, but its run was reported then)
        assert samples["tickwork_runs_in_progress", ()] == 0.0
        # Durations: one success, one error, one timeout (at its 0.1 s bound).
        assert samples["tickwork_run_duration_seconds_count", (("outcome", "success"),)] == 2
        assert samples["tickwork_run_duration_seconds_count", (("outcome", "error"),)] == 1
        assert samples["tickwork_run_duration_seconds_count", (("outcome", "timeout"),)] == 1
        assert samples["tickwork_run_duration_seconds_sum", (("outcome", "timeout"),)] == 0.1
        assert samples["tickwork_run_duration_seconds_count", (("outcome", "missed"),)] == 0
        inf = samples[
            "tickwork_run_duration_seconds_bucket", (("le", "+Inf"), ("outcome", "success"))
        ]
        assert inf == 2
        # Lateness: the four runs that started; none was hours late.
        assert samples["tickwork_run_lateness_seconds_count", ()] == 4
        assert samples["tickwork_run_lateness_seconds_bucket", (("le", "60.0"),)] == 4
        # Per-task gauges, read at scrape time.
        hourly = scheduler.get_task("hourly")
        assert hourly is not None
        assert hourly.next_run_time is not None
        key = (("name", "hourly report"), ("task", "hourly"))
        assert samples["tickwork_task_next_run_timestamp_seconds", key] == pytest.approx(
            hourly.next_run_time.timestamp()
        )
        success = samples["tickwork_last_success_timestamp_seconds", key]
        assert time.time() - 60 < success <= time.time()
        # Only tasks still in the scheduler have per-task gauges: one-shot ones are gone.
        assert samples["tickwork_tasks", ()] == 1.0
        assert len([n for n, _ in samples if n == "tickwork_last_success_timestamp_seconds"]) == 1
    finally:
        scheduler.shutdown(wait=False)
        metrics.close()
    assert list(registry.collect()) == []


def test_max_instances_and_set_aside_are_counted(serve: Callable[[Any], str]) -> None:
    scheduler = BackgroundScheduler()
    registry = CollectorRegistry()
    SchedulerMetrics(scheduler, registry)
    url = serve(metrics_app(registry=registry))
    started = threading.Event()
    release = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    scheduler.add_task(hold, "interval", seconds=0.05, id="busy", max_instances=1)
    scheduler.start()
    try:
        assert started.wait(10)

        def skipped() -> float:
            key = ("tickwork_task_runs_total", (("outcome", "max_instances"), ("task", "busy")))
            return scrape(url).get(key, 0.0)

        wait_for(lambda: skipped() >= 1, "a max_instances skip")
        assert scrape(url)["tickwork_runs_in_progress", ()] == 1.0
        # A trigger that raises while the pass plans: the task is set aside.
        scheduler.add_task(ok, Exploding(datetime.now(UTC)), id="bad")

        def set_aside() -> float:
            key = ("tickwork_task_runs_total", (("outcome", "set_aside"), ("task", "bad")))
            return scrape(url).get(key, 0.0)

        wait_for(lambda: set_aside() == 1, "the set-aside task")
    finally:
        release.set()
        scheduler.shutdown()
    assert scrape(url)["tickwork_runs_in_progress", ()] == 0.0


def test_store_errors_and_availability(serve: Callable[[Any], str]) -> None:
    """The events a store gate sends are what the gauges follow: sent here by hand, as
    the scheduler's event hub would."""
    scheduler = BackgroundScheduler()
    registry = CollectorRegistry()
    metrics = SchedulerMetrics(scheduler, registry)
    url = serve(metrics_app(registry=registry))
    for code in (STORE_UNAVAILABLE, STORE_RECOVERED, STORE_UNAVAILABLE):
        metrics._on_event(SchedulerEvent(code, alias="db", exception=OSError("down")))
    samples = scrape(url)
    assert samples["tickwork_store_errors_total", (("store", "db"),)] == 2
    assert samples["tickwork_store_available", (("store", "db"),)] == 0.0


def test_task_series_are_capped(serve: Callable[[Any], str]) -> None:
    scheduler = BackgroundScheduler()
    app = metrics_app(scheduler, max_task_series=2)
    url = serve(app)
    for index in range(5):
        scheduler.add_task(ok, id=f"t{index}")
    scheduler.start()
    try:

        def runs() -> dict[str, float]:
            found: dict[str, float] = {}
            for (name, labels), value in scrape(url).items():
                if name == "tickwork_task_runs_total":
                    task = dict(labels)["task"]
                    found[task] = found.get(task, 0) + value
            return found

        wait_for(lambda: sum(runs().values()) == 5, "five runs")
        counted = runs()
        assert len(counted) == 3
        assert counted[OTHER_TASKS] == 3
    finally:
        scheduler.shutdown()


def test_per_task_gauges_off_reads_no_tasks(serve: Callable[[Any], str]) -> None:
    class NoListing(BackgroundScheduler):
        def get_tasks(self, store: str | None = None) -> list[Any]:
            raise AssertionError("the tasks were listed")

    url = serve(metrics_app(NoListing(), per_task_gauges=False))
    samples = scrape(url)
    assert samples["tickwork_runs_in_progress", ()] == 0.0
    assert not any(name == "tickwork_tasks" for name, _ in samples)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_task_series": -1}, "-1"),
        ({"max_task_series": "10"}, "'10'"),
        ({"buckets": (1.0, 0)}, "(1.0, 0)"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        SchedulerMetrics(BackgroundScheduler(), **options)


def test_options_without_a_scheduler_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_task_series"):
        metrics_app(max_task_series=3)


def test_importing_tickwork_imports_no_prometheus_or_opentelemetry() -> None:
    code = (
        "import sys, tickwork, tickwork.schedulers, tickwork.executors.pool\n"
        "bad = [m for m in sys.modules if m.startswith(('prometheus_client', 'opentelemetry'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_the_extra_the_error_names_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None\n"
        "try:\n"
        "    import tickwork.metrics\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert "tickwork[metrics]" in result.stdout


def test_mounted_in_the_app_whose_loop_runs_the_scheduler(serve: Callable[[Any], str]) -> None:
    """An AsyncIOScheduler started in a Starlette app's lifespan, its metrics mounted in
    the same app: the scrape reads the tasks on the loop that runs them."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount

    scheduler = AsyncIOScheduler(timezone="UTC")

    async def ok_async() -> None:
        pass

    async def stuck() -> None:
        await asyncio.sleep(3600)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler.start()
        scheduler.add_task(ok_async, "interval", seconds=0.05, id="often")
        scheduler.add_task(stuck, id="stuck", timeout=0.1)
        yield
        await scheduler.shutdown_async()

    app = Starlette(routes=[Mount("/metrics", metrics_app(scheduler))], lifespan=lifespan)
    # (the metrics app answers any path; a Mount at /metrics redirects /metrics to
    # /metrics/, so the scrape asks for /metrics/metrics)
    url = serve(app) + "/metrics"

    def value(metric: str, **labels: str) -> float:
        return scrape(url).get((metric, tuple(sorted(labels.items()))), 0.0)

    wait_for(
        lambda: (
            value("tickwork_task_runs_total", task="often", outcome="success") >= 3
            and value("tickwork_task_runs_total", task="stuck", outcome="timeout") == 1
        ),
        "runs on the app's loop",
    )
    assert value("tickwork_tasks") == 1.0
    next_runs = [
        value
        for (metric, labels), value in scrape(url).items()
        if metric == "tickwork_task_next_run_timestamp_seconds" and ("task", "often") in labels
    ]
    assert len(next_runs) == 1
    assert abs(next_runs[0] - time.time()) < 60


def test_a_scrape_of_a_hung_store_does_not_stop_the_loop(serve: Callable[[Any], str]) -> None:
    """The per-task gauges read the stores at scrape time: a store that hangs holds the
    scrape, never the event loop that runs the scheduler and serves the rest of the app."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from tickwork.stores import MemoryStore

    release = threading.Event()
    reading = threading.Event()
    scraping = threading.Event()

    class HungStore(MemoryStore):
        def get_all_tasks(self) -> list[Any]:
            if scraping.is_set():
                reading.set()
                release.wait(30)  # (a database that stopped answering)
            return super().get_all_tasks()

    scheduler = AsyncIOScheduler(stores={"default": HungStore()}, timezone="UTC")
    ticks: list[float] = []

    async def tick() -> None:
        ticks.append(time.monotonic())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler.start()
        scheduler.add_task(tick, "interval", seconds=0.05, id="tick")
        yield
        await scheduler.shutdown_async()

    async def ping(request: Any) -> PlainTextResponse:
        return PlainTextResponse("pong")

    app = Starlette(
        routes=[Route("/ping", ping), Mount("/metrics", metrics_app(scheduler))],
        lifespan=lifespan,
    )
    url = serve(app)
    scraped: list[httpx.Response] = []
    scraper = threading.Thread(
        target=lambda: scraped.append(httpx.get(f"{url}/metrics/metrics", timeout=60))
    )
    scraping.set()
    scraper.start()
    try:
        assert reading.wait(10), "the scrape did not read the tasks"
        # While the scrape waits on the store: the app answers and the scheduler runs on.
        assert httpx.get(f"{url}/ping", timeout=10).text == "pong"
        before = len(ticks)
        wait_for(lambda: len(ticks) >= before + 3, "runs while the scrape waits")
        assert not scraped
    finally:
        release.set()
        scraper.join(30)
    assert scraped[0].status_code == 200
    assert "tickwork_tasks 1.0" in scraped[0].text


def test_the_app_serves_the_accepted_format_and_compresses_on_request(
    serve: Callable[[Any], str],
) -> None:
    """What prometheus_client's own app does: the format the scraper accepts, gzip on
    request."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(ok, "interval", hours=1, id="hourly")
    scheduler.start(paused=True)
    try:
        url = serve(metrics_app(scheduler))
        plain = httpx.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}, timeout=10)
        assert plain.headers["content-type"].startswith("text/plain")
        assert "content-encoding" not in plain.headers
        assert "tickwork_tasks 1.0" in plain.text
        zipped = httpx.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert zipped.headers["content-encoding"] == "gzip"
        assert "tickwork_tasks 1.0" in zipped.text  # (httpx decompresses)
        openmetrics = httpx.get(
            f"{url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")
    finally:
        scheduler.shutdown()
