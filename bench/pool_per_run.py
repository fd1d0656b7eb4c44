"""What one run costs on the thread pool executor's common path: no-op instances sent to
``ThreadPoolExecutor(max_workers=1)`` by one thread, CPU microseconds per run.

Usage: ``python bench/pool_per_run.py [--runs N] [--rounds R]`` prints the median and
the minimum over the rounds. Written to check that the run-now queue's worker watch
(``WorkerCapacity.watch_workers``, one ``None`` check per call in the worker loop while
nobody watches) leaves the per-run cost unchanged: run it in two checkouts and compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from tickwork.executors import ThreadPoolExecutor
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Host:
    """No listener: no event is built, as for a scheduler that keeps none."""

    def wants(self, code: int) -> bool:
        return False

    def emit(self, event: object) -> None:
        pass


def _noop() -> None:
    pass


def cpu_us_per_run(runs: int) -> float:
    executor = ThreadPoolExecutor(max_workers=1)
    executor.start(_Host(), "default")
    task = Task(_noop, DateTrigger(T0), id="t", max_instances=runs + 1)
    run_times = [T0]
    began = time.process_time()
    for _ in range(runs):
        executor.send_task(task, run_times)
    executor.wait_until_idle()
    used = time.process_time() - began
    executor.shutdown()
    return used / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    figures = [cpu_us_per_run(options.runs) for _ in range(options.rounds)]
    print(
        f"{options.runs} runs x {options.rounds}: CPU us/run median "
        f"{statistics.median(figures):.3f}, min {min(figures):.3f}"
    )


if __name__ == "__main__":
    main()
