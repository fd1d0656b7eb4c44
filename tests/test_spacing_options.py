"""Bad input for fixed-delay triggers and the ``cooldown`` option, refused where it is
given, by name; defaults and updates (tickwork/triggers/delay.py, tickwork/_run_policy.py,
tickwork/schedulers/_spacing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork import BackgroundScheduler
from tickwork.exceptions import InvalidTaskError, InvalidTriggerError
from tickwork.serializers import JSONSerializer, PickleSerializer
from tickwork.tasks import Task
from tickwork.triggers import DelayTrigger, create_trigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job() -> None:
    """A task function."""


@pytest.mark.parametrize(
    ("keywords", "words"),
    [
        ({"seconds": 0}, "must be positive, got seconds=0"),
        ({"seconds": -5}, "must be positive, got seconds=-5"),
        ({"minutes": 1, "seconds": -61}, "must be positive"),
        ({"seconds": float("nan")}, "finite"),
        ({"seconds": "5"}, "delay seconds must be a number, got '5'"),
        ({"seconds": True}, "delay seconds must be a number"),
    ],
)
def test_a_delay_that_is_not_positive_is_refused_by_name(
    keywords: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidTriggerError, match=words.replace("(", r"\(")):
        DelayTrigger(**keywords)  # type: ignore[arg-type]
    with pytest.raises(InvalidTriggerError):
        BackgroundScheduler().add_task(job, "delay", **keywords)


def test_delay_trigger_fires_first_at_start_or_now_then_one_delay_after_the_later_of_previous_and_now() -> (
    None
):
    trigger = DelayTrigger(seconds=10)
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0
    assert trigger.get_next_trigger_time(UTC, T0, T0) == T0 + timedelta(seconds=10)
    later = T0 + timedelta(seconds=3)
    assert trigger.get_next_trigger_time(UTC, T0, later) == later + timedelta(seconds=10)
    assert trigger.get_next_trigger_time(UTC, T0) == T0 + timedelta(seconds=10)
    start = DelayTrigger(minutes=1, start_at=T0 + timedelta(hours=1))
    assert start.get_next_trigger_time(UTC, None, T0) == T0 + timedelta(hours=1)
    assert trigger.spacing == 10.0
    assert start.spacing == 60.0
    assert create_trigger("delay", seconds=10) == trigger
    assert repr(start) == "DelayTrigger(delay=0:01:00, start_at=2026-01-01T01:00:00+00:00)"


@pytest.mark.parametrize("serializer", [JSONSerializer(), PickleSerializer()])
def test_a_delay_trigger_and_a_cooldown_round_trip_through_the_serializers(
    serializer: JSONSerializer | PickleSerializer,
) -> None:
    task = Task(
        "test_spacing_options:job",
        DelayTrigger(seconds=2.5, timezone="UTC"),
        id="d",
        cooldown=timedelta(seconds=4),
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
        next_run_time=T0,
    )
    loaded = serializer.deserialize(serializer.serialize(task))
    assert loaded.trigger == task.trigger
    assert loaded.trigger.spacing == 2.5
    assert loaded.cooldown == 4.0


def test_a_stored_delay_trigger_with_a_bad_delay_is_refused_by_name() -> None:
    serializer = JSONSerializer()
    task = Task(
        "test_spacing_options:job",
        DelayTrigger(seconds=2, timezone="UTC"),
        id="d",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
        next_run_time=T0,
    )
    data = serializer.serialize(task).replace(b'"v":[0,2,0]', b'"v":[-1,86398,0]')
    assert data != serializer.serialize(task)
    with pytest.raises(Exception, match=r"delay"):
        serializer.deserialize(data)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"max_instances": 2}, "max_instances=2: runs spaced from the end"),
        ({"coalesce": False}, "coalesce=False: the fire times"),
    ],
)
def test_spacing_with_overlapping_or_uncoalesced_runs_is_refused_with_the_reason(
    options: dict[str, object], words: str
) -> None:
    scheduler = BackgroundScheduler()
    with pytest.raises(InvalidTaskError, match=words):
        scheduler.add_task(job, "delay", seconds=5, **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidTaskError, match=words):
        scheduler.add_task(job, "interval", seconds=5, cooldown=30, **options)  # type: ignore[arg-type]
    # The same values from task_defaults are refused too: the rule is about the task.
    defaults = BackgroundScheduler(task_defaults=options)
    with pytest.raises(InvalidTaskError, match=words):
        defaults.add_task(job, "delay", seconds=5)


def test_an_update_that_breaks_the_spacing_rules_changes_nothing() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(job, "delay", seconds=5, id="d")
    scheduler.add_task(job, "interval", seconds=5, id="i", max_instances=3)
    with scheduler:
        with pytest.raises(InvalidTaskError, match="max_instances=2"):
            scheduler.update_task("d", max_instances=2)
        with pytest.raises(InvalidTaskError, match="max_instances=3"):
            scheduler.update_task("i", cooldown=10)
        with pytest.raises(InvalidTaskError, match="max_instances=3"):
            scheduler.reschedule_task("i", trigger="delay", seconds=5)
        delay, interval = scheduler.get_task("d"), scheduler.get_task("i")
        assert delay is not None
        assert delay.max_instances == 1
        assert interval is not None
        assert interval.cooldown is None
        scheduler.update_task("i", max_instances=1, cooldown=timedelta(minutes=1))
        changed = scheduler.get_task("i")
        assert changed is not None
        assert changed.cooldown == 60.0
        scheduler.update_task("i", cooldown=None)
        cleared = scheduler.get_task("i")
        assert cleared is not None
        assert cleared.cooldown is None


@pytest.mark.parametrize("value", [0, -1, float("inf"), "10", True])
def test_a_cooldown_that_is_not_positive_seconds_is_refused_by_name(value: object) -> None:
    with pytest.raises(InvalidTaskError, match=r"cooldown must be seconds > 0.*got"):
        BackgroundScheduler().add_task(job, "interval", seconds=5, cooldown=value)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="cooldown"):
        BackgroundScheduler(task_defaults={"cooldown": value})


def test_cooldown_comes_from_task_defaults_and_is_saved_only_when_set() -> None:
    scheduler = BackgroundScheduler(task_defaults={"cooldown": 45})
    task = scheduler.add_task(job, "interval", seconds=5)
    assert task.cooldown == 45.0
    assert scheduler.add_task(job, "interval", seconds=5, cooldown=None).cooldown is None
    plain = BackgroundScheduler().add_task(job, "interval", seconds=5)
    assert plain.cooldown is None
    assert "cooldown" not in plain.__getstate__()
    assert task.__getstate__()["cooldown"] == 45.0
    assert "retries" not in task.__getstate__()  # the other policy fields stay default
