"""Metrics: a Prometheus collector fed by the scheduler's events (``tickwork[metrics]``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tickwork import BackgroundScheduler
from tickwork.metrics import SchedulerMetrics, metrics_app


def send_invoices() -> None:
    pass


def sync_prices() -> None:
    raise ConnectionError("the price feed is down")


scheduler = BackgroundScheduler()
registry = CollectorRegistry()
# Listens from now on; at most 1000 task ids become label values (the rest: "_other").
metrics = SchedulerMetrics(scheduler, registry, max_task_series=1000)
app = metrics_app(registry=registry)  # ASGI: mount it, or run it with uvicorn

scheduler.add_task(send_invoices, "interval", seconds=0.05, id="invoices")
scheduler.add_task(sync_prices, id="prices")
with scheduler:
    time.sleep(0.3)

text = generate_latest(registry).decode()
runs = {
    (sample.labels["task"], sample.labels["outcome"]): sample.value
    for family in text_string_to_metric_families(text)
    if family.name == "tickwork_task_runs"
    for sample in family.samples
}
assert runs[("invoices", "success")] >= 3
assert runs[("prices", "error")] == 1
assert "tickwork_run_lateness_seconds_bucket" in text
metrics.close()  # stop listening, leave the registry
