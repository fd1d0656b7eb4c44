"""What every enqueueing executor (Celery, arq) does alike, against its real broker and a
real worker subprocess: a run goes to a worker and its outcome comes back under the run's
key. Backend-only behaviour stays in test_celery_executor.py and test_arq_executor.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import arq_support
import celery_support
import pytest
from enqueue_support import Outcomes, import_without, running_scheduler
from servers import rabbitmq_url

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT
from tickwork.executors._keys import run_key
from tickwork.schedulers.background import BackgroundScheduler

pytestmark = [pytest.mark.external_service("redis")]


celery_queue = celery_support.module_worker_queue()
arq_queue = arq_support.module_worker_queue()


def _config(kind: str, queue: str) -> dict[str, Any]:
    if kind == "celery":
        backend = celery_support.backend_url()
        return {"type": "celery", "app": rabbitmq_url(), "backend": backend, "queue": queue}
    return {"type": "arq", "redis": arq_support.arq_url(), "queue_name": queue}


@pytest.fixture(
    params=[pytest.param("celery", marks=pytest.mark.external_service("rabbitmq")), "arq"]
)
def enqueuing(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[BackgroundScheduler, Outcomes, str]]:
    """A scheduler whose runs go to a real worker, its run events, and the module of the
    worker functions (``"celery_jobs"`` / ``"arq_jobs"``)."""
    kind: str = request.param
    queue = request.getfixturevalue(f"{kind}_queue")
    config = {**_config(kind, queue), "poll_interval": 0.1}
    codes = TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT
    with running_scheduler(config, codes) as (sched, outcomes):
        yield sched, outcomes, f"{kind}_jobs"


def test_a_run_is_executed_by_a_worker_and_its_result_comes_back(
    enqueuing: tuple[BackgroundScheduler, Outcomes, str],
) -> None:
    sched, outcomes, jobs = enqueuing
    task = sched.add_task(f"{jobs}:add", "date", args=[2, 3], id="add")
    event = outcomes.next()
    assert (event.code, event.task_id, event.return_value) == (TASK_EXECUTED, task.id, 5)


def test_the_worker_sees_the_runs_key_as_its_message_id(
    enqueuing: tuple[BackgroundScheduler, Outcomes, str],
) -> None:
    sched, outcomes, jobs = enqueuing
    sched.add_task(f"{jobs}:key", "date", id="keyed")
    event = outcomes.next()
    assert event.code == TASK_EXECUTED
    assert event.return_value == run_key("keyed", event.scheduled_run_time)
    assert "@" in event.return_value
    assert event.return_value.endswith("+00:00")


def test_a_coroutine_function_runs_in_the_worker(
    enqueuing: tuple[BackgroundScheduler, Outcomes, str],
) -> None:
    sched, outcomes, jobs = enqueuing
    sched.add_task(f"{jobs}:async_add", "date", args=[20, 22], id="async")
    assert outcomes.next().return_value == 42


def test_a_failing_run_is_a_task_error_with_the_workers_exception(
    enqueuing: tuple[BackgroundScheduler, Outcomes, str],
) -> None:
    sched, outcomes, jobs = enqueuing
    sched.add_task(f"{jobs}:boom", "date", args=["no luck"], id="boom")
    event = outcomes.next()
    assert event.code == TASK_ERROR
    assert isinstance(event.exception, ValueError)
    assert "no luck" in str(event.exception)
    assert event.traceback is not None
    assert "ValueError" in event.traceback


@pytest.mark.parametrize("backend", ["celery", "arq"])
def test_importing_the_executor_without_its_library_names_the_extra(backend: str) -> None:
    out = import_without(backend, f"tickwork.executors.{backend}")
    assert out.startswith("MissingDependencyError")
    assert f"pip install 'tickwork[{backend}]'" in out
