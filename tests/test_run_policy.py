"""The run-policy task options (timeout, retries, retry_delay, retry_backoff, retry_on):
checked at add_task naming the value, filled from task_defaults, changed with update,
and kept by every serializer (tickwork/_run_policy.py)."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tickwork import BackgroundScheduler
from tickwork._run_policy import DEFAULT_POLICY, is_retried, retry_delay_for
from tickwork.exceptions import ConfigurationError, InvalidTaskError, SerializationError
from tickwork.serializers import JSONSerializer, PickleSerializer
from tickwork.stores import FileStore
from tickwork.tasks import Task


def job() -> None:
    """A task function with an importable reference."""


class FlakyError(Exception):
    """An exception class with an importable reference."""


@pytest.fixture
def scheduler() -> BackgroundScheduler:
    return BackgroundScheduler(timezone="UTC")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": -1}, "timeout must be seconds > 0"),
        ({"timeout": 0}, "use None for no limit"),
        ({"timeout": math.nan}, "nan"),
        ({"timeout": "5"}, "'5'"),
        ({"retries": -1}, "retries must be a whole number >= 0"),
        ({"retries": 1.5}, "1.5"),
        ({"retries": True}, "True"),
        ({"retry_delay": -0.5}, "retry_delay must be seconds >= 0"),
        ({"retry_delay": math.inf}, "inf"),
        ({"retry_backoff": 0.5}, "retry_backoff must be a number >= 1"),
        ({"retry_backoff": math.nan}, "nan"),
        ({"retry_on": "ValueError"}, "retry_on must be exception classes"),
        ({"retry_on": (ValueError, int)}, "<class 'int'>"),
        ({"retry_on": ()}, "at least one exception class"),
    ],
)
def test_bad_values_are_refused_at_add_task_by_name(
    scheduler: BackgroundScheduler, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        scheduler.add_task(job, **options)
    assert named in str(caught.value)
    assert scheduler.get_tasks() == []  # nothing half-added


def test_a_retry_on_class_a_persistent_store_cannot_reference_is_refused(
    tmp_path: Any,
) -> None:
    class LocalError(Exception):
        pass

    scheduler = BackgroundScheduler(stores={"default": FileStore(str(tmp_path / "tasks"))})
    with scheduler, pytest.raises(SerializationError) as caught:
        scheduler.add_task(job, "interval", seconds=60, retries=2, retry_on=LocalError)
    assert "LocalError" in str(caught.value)


def test_defaults_and_task_defaults(scheduler: BackgroundScheduler) -> None:
    plain = scheduler.add_task(job, id="plain")
    assert (plain.timeout, plain.retries, plain.retry_delay) == (None, 0, 1.0)
    assert (plain.retry_backoff, plain.retry_on) == (2.0, (Exception,))
    assert plain._profile.policy is DEFAULT_POLICY  # shared, not one per task
    tuned = BackgroundScheduler(
        task_defaults={"retries": 2, "timeout": timedelta(seconds=30), "retry_on": OSError}
    )
    task = tuned.add_task(job, retry_delay=5)
    assert (task.retries, task.timeout, task.retry_on, task.retry_delay) == (
        2,
        30.0,
        (OSError,),
        5.0,
    )
    with pytest.raises(InvalidTaskError, match="retries"):
        BackgroundScheduler(task_defaults={"retries": -2})
    with pytest.raises(ConfigurationError, match="retry_delays"):
        BackgroundScheduler(task_defaults={"retry_delays": 2})


def test_update_changes_the_policy_and_checks_it(scheduler: BackgroundScheduler) -> None:
    task = scheduler.add_task(job, retries=1)
    task.update(retries=4, retry_on=[FlakyError, OSError], timeout=2.5)
    assert (task.retries, task.retry_on, task.timeout) == (4, (FlakyError, OSError), 2.5)
    with pytest.raises(InvalidTaskError, match="retry_backoff"):
        task.update(retry_backoff=0)
    assert task.retry_backoff == 2.0  # unchanged after a refused update


@pytest.mark.parametrize("serializer", [JSONSerializer(), PickleSerializer()])
def test_serializers_keep_the_policy(serializer: Any) -> None:
    task = Task(
        job,
        "interval",
        seconds=5,
        id="t",
        timeout=3,
        retries=2,
        retry_delay=0.5,
        retry_backoff=3,
        retry_on=(FlakyError, ConnectionError),
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=1,
        next_run_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    loaded = serializer.deserialize(serializer.serialize(task))
    assert (loaded.timeout, loaded.retries, loaded.retry_delay, loaded.retry_backoff) == (
        3.0,
        2,
        0.5,
        3.0,
    )
    assert loaded.retry_on == (FlakyError, ConnectionError)


def test_a_default_policy_adds_nothing_to_the_saved_state(
    scheduler: BackgroundScheduler,
) -> None:
    with scheduler:
        task = scheduler.add_task(job, "interval", seconds=5)
    state = task.__getstate__()
    assert "retries" not in state
    assert "timeout" not in state
    assert pickle.loads(pickle.dumps(task)).retries == 0


def test_a_saved_retry_on_that_is_no_exception_class_is_refused(
    scheduler: BackgroundScheduler,
) -> None:
    with scheduler:
        task = scheduler.add_task(job, "interval", seconds=5, retries=1)
    state = task.__getstate__()
    state["retry_on"] = ["builtins:int"]
    with pytest.raises(InvalidTaskError, match="int"):
        Task.from_state(state)


def test_backoff_and_retry_on_rules() -> None:
    policy = DEFAULT_POLICY._replace(retries=3, retry_delay=2.0, retry_backoff=3.0)
    assert [retry_delay_for(policy, attempt) for attempt in (1, 2, 3)] == [2.0, 6.0, 18.0]
    assert is_retried(policy, 3, ValueError())
    assert not is_retried(policy, 4, ValueError())  # attempts used up
    assert not is_retried(policy._replace(retry_on=(OSError,)), 1, ValueError())
    assert not is_retried(policy, 1, None)


def test_a_task_stored_without_a_scheduler_keeps_the_options_it_was_given() -> None:
    task = Task(
        job,
        "interval",
        seconds=5,
        id="t",
        retries=2,
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=1,
        next_run_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    serializer = JSONSerializer()
    loaded = serializer.deserialize(serializer.serialize(task))
    assert (loaded.retries, loaded.timeout, loaded.retry_on) == (2, None, (Exception,))
