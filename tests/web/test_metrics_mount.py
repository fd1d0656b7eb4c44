"""The admin app serves the scheduler's real Prometheus metrics at /metrics, behind its
token (Prometheus scrapes with ``authorization: {credentials: ...}``)."""

from __future__ import annotations

import time

import httpx
import pytest
from web_server import serve

from tickwork.schedulers import BackgroundScheduler

parser = pytest.importorskip("prometheus_client.parser")
metrics = pytest.importorskip("tickwork.metrics")


def ok() -> None:
    pass


def broken() -> None:
    raise ValueError("no")


def test_metrics_of_the_scheduler_are_scraped_through_the_admin_app() -> None:
    scheduler = BackgroundScheduler(identity="web-metrics-test")
    scheduler.add_task(ok, "interval", seconds=0.2, id="ok")
    scheduler.add_task(broken, "interval", seconds=0.2, id="broken")
    app = scheduler.admin_app(token="admin-token-0001", metrics_app=metrics.metrics_app(scheduler))
    scheduler.start()
    try:
        with serve(app) as url:
            assert httpx.get(url + "/metrics").status_code == 401
            deadline = time.monotonic() + 10
            while True:
                answer = httpx.get(
                    url + "/metrics",
                    headers={"Authorization": "Bearer admin-token-0001"},
                    follow_redirects=True,
                )
                assert answer.status_code == 200, answer.text
                runs = {
                    (sample.labels["task"], sample.labels["outcome"]): sample.value
                    for family in parser.text_string_to_metric_families(answer.text)
                    if family.name == "tickwork_task_runs"
                    for sample in family.samples
                    if sample.name == "tickwork_task_runs_total"
                }
                if runs.get(("ok", "success"), 0) >= 2 and runs.get(("broken", "error"), 0) >= 2:
                    break
                assert time.monotonic() < deadline, runs
                time.sleep(0.2)
    finally:
        scheduler.shutdown()
