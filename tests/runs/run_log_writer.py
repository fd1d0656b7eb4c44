"""A second process writing run records, for the race tests (test_run_log_sharing.py).

Usage: ``python run_log_writer.py SPEC_JSON OUTCOME COUNT``. Opens the log, prints
``ready`` and waits for a ``go`` line; then, for runs 0 .. COUNT-1 in batches of
:data:`BATCH`, writes each batch's start (``running``) and then its end (``OUTCOME``);
prints ``written`` and waits for a ``read`` line; then prints one JSON line, run id ->
the outcome this process reads back, and exits.
"""

from __future__ import annotations

import json
import sys

from run_log_support import LogSpec, open_log, record

from tickwork.runs.base import RunLog

BATCH = 20
TASKS = 10


def race_records(outcome: str, count: int) -> list[list[object]]:
    """The batches both racers write: ``[starts, ends]`` per batch of runs."""
    batches: list[list[object]] = []
    for start in range(0, count, BATCH):
        numbers = range(start, min(start + BATCH, count))
        starts = [record(f"race-{n % TASKS}", n, "running") for n in numbers]
        ends = [record(f"race-{n % TASKS}", n, outcome) for n in numbers]
        batches.append([starts, ends])
    return batches


def write_all(log: RunLog, outcome: str, count: int) -> None:
    """Write every batch of :func:`race_records`: starts, then ends."""
    for starts, ends in race_records(outcome, count):
        log.write(starts)  # type: ignore[arg-type]
        log.write(ends)  # type: ignore[arg-type]


def read_all(log: RunLog, count: int) -> dict[str, str | None]:
    """Run id -> the outcome read back (``None`` when missing)."""
    found: dict[str, str | None] = {}
    for n in range(count):
        run_id = record(f"race-{n % TASKS}", n).run_id
        got = log.get(run_id)
        found[run_id] = got.outcome if got is not None else None
    return found


def main() -> None:
    spec = LogSpec.from_json(sys.argv[1])
    outcome, count = sys.argv[2], int(sys.argv[3])
    with open_log(spec) as log:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        write_all(log, outcome, count)
        print("written", flush=True)
        if sys.stdin.readline().strip() != "read":
            return
        print(json.dumps(read_all(log, count)), flush=True)


if __name__ == "__main__":
    main()
