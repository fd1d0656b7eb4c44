"""Run history: every run is on record in its task's store, with its outcome, duration
and error; get_runs() reads the records, newest first."""

from __future__ import annotations

import time

from tickwork import BackgroundScheduler


def send_invoices() -> int:
    return 3


def sync_prices() -> None:
    raise ConnectionError("the price service did not answer")


scheduler = BackgroundScheduler(
    # Keep a week of records, at most 100 per task (the defaults); None keeps none.
    run_history={"max_age": 7 * 24 * 3600, "max_per_task": 100},
)
scheduler.add_task(send_invoices, "interval", seconds=0.05, id="invoices")
scheduler.add_task(sync_prices, id="prices")

with scheduler:
    time.sleep(0.3)
    latest = scheduler.get_runs("invoices", outcome="success", limit=1)[0]
    failures = scheduler.get_runs(outcome="error")

print(latest.outcome, f"{latest.duration:.6f} s", latest.run_id)
print(failures[0].task_id, failures[0].error)
assert latest.outcome == "success"
assert latest.duration is not None
assert [(r.task_id, r.error) for r in failures] == [
    ("prices", "ConnectionError: the price service did not answer")
]
