"""Fixtures shared by the whole suite, and how the suite is spread over parallel workers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickwork.clock import FakeClock

# `make test` runs the suite on several pytest-xdist workers with `--dist loadgroup`: much of
# it waits (sleeps, servers, subprocess fleets), so workers overlap those waits. The tests
# below start fleets of processes or assert on wall-clock behaviour (event-loop lag,
# "shut down within N s", lease timing): next to each other they would mostly measure one
# another. They all get one xdist group, so one worker runs them one after another, and
# each of them also runs alone (below): in the group alone, beside the other workers,
# they failed now and then on the 2-core machine (a 339 ms loop stall against a 250 ms
# bound, a thread-pool wait, take-over timings), never with the machine to themselves.
# Without xdist neither does anything.
# Paths are relative to tests/; a directory (trailing "/") covers every file under it.
SERIAL = "serial"
SERIAL_PATHS = (
    "fleet/",
    "executors/test_celery_fleet.py",
    "executors/test_arq_fleet.py",
    "executors/test_process_timeouts.py",
    "executors/test_thread_workers.py",
    "schedulers/test_burst.py",
    "schedulers/test_leadership.py",
    "schedulers/test_store_io_off_loop.py",
    "schedulers/test_hung_store.py",
    "schedulers/test_shutdown_timeout.py",
    "stores/test_io_bounds.py",
    "test_examples.py",
)
# Each of these, and each test of ``SERIAL_PATHS``, runs alone: it waits until the tests
# running on the other workers end, and they start no new test until it has ended (see
# ``pytest_runtest_protocol``). The first
# three take a shared server away from every client for a while (Redis CLIENT PAUSE,
# RabbitMQ stop_app): a test of another worker using that server meanwhile would fail for
# nothing. The fleet tests after them time a take-over to the second (a run due 6 s after
# the start, a 1.5 s lease, "0.1 s past a whole second"): in the serial group, beside the
# other workers, they failed in 4 of 6 full runs on the 2-core machine, never alone.
ALONE = (
    "stores/test_io_bounds.py::test_a_paused_redis_times_calls_out_instead_of_hanging",
    "stores/test_io_bounds.py::test_a_redis_paused_for_everyone_times_reads_out",
    "executors/test_celery_fleet.py::"
    "test_each_slot_reaches_a_worker_once_through_a_kill_and_a_broker_restart",
    "fleet/test_leadership_fleet.py::test_a_killed_leaders_run_is_taken_over_by_the_new_leader_only",
    "fleet/test_shared_store_fleet.py::test_a_killed_scheduler_s_runs_are_taken_over",
    "fleet/test_leadership_fleet.py::test_three_members_one_leader_through_two_kills",
    "executors/test_arq_executor.py::test_a_job_whose_worker_died_is_run_again_by_another_and_said",
    "executors/test_arq_fleet.py::test_each_slot_reaches_a_worker_once_through_a_scheduler_kill",
)
# The directory of the lock files the workers of one run share, made by the controller.
_BARRIER_DIR = "TICKWORK_TEST_BARRIER_DIR"


def _tests_path(item: pytest.Item) -> str | None:
    tests = Path(__file__).parent
    if not item.path.is_relative_to(tests):
        return None
    return item.path.relative_to(tests).as_posix()


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller: make the barrier's lock directory, for its workers."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", 0):
        return
    directory = tempfile.mkdtemp(prefix="tickwork-tests-")
    os.environ[_BARRIER_DIR] = directory  # the workers, started later, inherit it
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    config.add_cleanup(lambda: os.environ.pop(_BARRIER_DIR, None))


@contextlib.contextmanager
def _barrier(alone: bool) -> Iterator[None]:
    """Hold the run's lock shared (any test) or exclusive (a test of ``ALONE``).

    ``gate`` lets a waiting exclusive holder go first: it holds the gate while the running
    tests drain, so no new test slips in (``flock`` alone would let shared holders starve
    it)."""
    directory = os.environ.get(_BARRIER_DIR)
    if not directory or not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    with open(f"{directory}/gate", "a") as gate, open(f"{directory}/tests", "a") as tests:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(tests, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
        yield  # closing the files releases both locks


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None]:
    """Run each test inside the barrier; ``tryfirst`` puts the wait outside the per-test
    timeout (pytest-timeout starts its timer in this hook too)."""
    where = _tests_path(item)
    name = getattr(item, "originalname", item.name)  # without the parameters
    alone = where is not None and (f"{where}::{name}" in ALONE or _serial(where))
    with _barrier(alone):
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests of ``SERIAL_PATHS`` into the ``serial`` xdist group (see above)."""
    for item in items:
        where = _tests_path(item)
        if where is not None and _serial(where):
            item.add_marker(pytest.mark.xdist_group(SERIAL))


def _serial(where: str) -> bool:
    """Whether the test file at ``where`` (relative to tests/) is one of ``SERIAL_PATHS``."""
    return any(where == p or (p.endswith("/") and where.startswith(p)) for p in SERIAL_PATHS)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock at 2026-01-01 00:00 UTC that moves only when the test says so."""
    return FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
