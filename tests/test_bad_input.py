"""Every mistake raises a specific tickwork error, at the call that made it, naming the value."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    InvalidTaskError,
    InvalidTriggerError,
    ReferenceResolutionError,
    TickworkError,
    UnknownAliasError,
)
from tickwork.schedulers import BackgroundScheduler
from tickwork.tasks import Task
from tickwork.triggers import CronTrigger, IntervalTrigger, create_trigger


def job(a: int, b: int = 0) -> int:
    return a + b


@pytest.fixture
def scheduler() -> BackgroundScheduler:
    return BackgroundScheduler()


def test_unknown_trigger_alias(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(UnknownAliasError, match="'intervall'") as info:
        scheduler.add_task(job, "intervall", args=[1], seconds=5)
    assert "interval" in str(info.value)  # the known aliases are listed


def test_unknown_store_alias(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(UnknownAliasError, match="'mongo'"):
        BackgroundScheduler(stores={"default": {"type": "mongo"}})
    with pytest.raises(UnknownAliasError, match="'elsewhere'"):
        scheduler.add_task(job, "interval", args=[1], seconds=5, store="elsewhere")


def test_unknown_executor_alias(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(UnknownAliasError, match="'gpu'"):
        BackgroundScheduler(executors={"default": {"type": "gpu"}})
    scheduler.start()
    try:
        with pytest.raises(UnknownAliasError, match="'nowhere'"):
            scheduler.add_task(job, "interval", args=[1], seconds=5, executor="nowhere")
    finally:
        scheduler.shutdown()


def test_trigger_keywords_the_trigger_does_not_take(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(InvalidTriggerError, match="secs"):
        scheduler.add_task(job, "interval", args=[1], secs=5)


def test_executor_option_it_does_not_take() -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        BackgroundScheduler(executors={"default": {"type": "threadpool", "workers": 3}})


@pytest.mark.parametrize(
    "length", [{"seconds": 0}, {"seconds": -5}, {"minutes": -1, "seconds": 30}]
)
def test_zero_or_negative_interval(length: dict[str, float]) -> None:
    with pytest.raises(InvalidTriggerError, match="positive") as info:
        IntervalTrigger(**length)
    assert str(next(iter(length.values()))) in str(info.value)


def test_max_instances_below_one(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(InvalidTaskError, match=r"max_instances.*0"):
        scheduler.add_task(job, args=[1], max_instances=0)


def test_reference_that_does_not_import(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(ReferenceResolutionError, match="no_such_module"):
        scheduler.add_task("no_such_module:job")
    with pytest.raises(ReferenceResolutionError, match="nothing_here"):
        scheduler.add_task("operator:nothing_here")
    with pytest.raises(ReferenceResolutionError, match="qualname"):
        scheduler.add_task("operator.add")


def test_changing_a_task_id(scheduler: BackgroundScheduler) -> None:
    scheduler.start()
    try:
        scheduler.add_task(job, "interval", args=[1], seconds=5, id="fixed")
        with pytest.raises(InvalidTaskError, match=r"'fixed'.*'other'"):
            scheduler.update_task("fixed", id="other")
    finally:
        scheduler.shutdown()


def test_args_that_do_not_match_the_signature(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(
        InvalidTaskError, match=r"job\(a: .*, b: .* = 0\).*missing a required argument: 'a'"
    ):
        scheduler.add_task(job)
    with pytest.raises(InvalidTaskError, match="c"):
        scheduler.add_task(job, args=[1], kwargs={"c": 2})
    with pytest.raises(InvalidTaskError):
        scheduler.add_task(job, args=[1, 2, 3])


def test_unknown_task_defaults_and_time_zone() -> None:
    # (APScheduler 3's misfire_grace_time is taken as the key; a misspelt key is not)
    with pytest.raises(ConfigurationError, match=r"'misfire_grace'.*'mistrigger_grace_time'"):
        BackgroundScheduler(task_defaults={"misfire_grace": 5})
    with pytest.raises(ConfigurationError, match="Mars/Olympus"):
        BackgroundScheduler(timezone="Mars/Olympus")
    with pytest.raises(InvalidTaskError, match="-1"):
        BackgroundScheduler(task_defaults={"mistrigger_grace_time": -1})


def test_naive_next_run_time_and_bad_fields() -> None:
    with pytest.raises(InvalidTaskError, match="timezone-aware"):
        Task(job, args=[1], next_run_time=datetime(2026, 1, 1))
    with pytest.raises(ReferenceResolutionError, match="not callable"):
        Task("operator:__name__")
    with pytest.raises(InvalidTaskError, match="42"):
        Task(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidTaskError, match="kwargs"):
        Task(job, args=[1], kwargs=[("b", 2)])  # type: ignore[arg-type]
    assert Task(job, args=[1], next_run_time=datetime(2026, 1, 1, tzinfo=UTC))


def test_every_error_is_a_tickwork_error_and_a_builtin() -> None:
    assert issubclass(UnknownAliasError, TickworkError)
    assert issubclass(UnknownAliasError, ValueError)
    assert issubclass(ReferenceResolutionError, ImportError)
    assert issubclass(InvalidTriggerError, ValueError)


def test_unknown_executor_of_a_pending_task_fails_start_and_loses_nothing() -> None:
    scheduler = BackgroundScheduler()
    scheduler.add_task(job, "interval", args=[1], seconds=5, id="p", executor="fast")
    with pytest.raises(UnknownAliasError, match="'fast'"):
        scheduler.start()
    assert not scheduler.running
    assert [t.id for t in scheduler.get_tasks()] == ["p"]
    scheduler.add_executor("threadpool", "fast")
    scheduler.start()
    try:
        assert scheduler.get_task("p") is not None
    finally:
        scheduler.shutdown()


def test_a_start_failed_by_a_stored_duplicate_can_be_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite'}"
    first = BackgroundScheduler(stores={"default": {"type": "sqlalchemy", "url": url}})
    first.add_task(job, "interval", args=[1], seconds=5, id="dup")
    first.start()
    first.shutdown()

    second = BackgroundScheduler(stores={"default": {"type": "sqlalchemy", "url": url}})
    second.add_task(job, "interval", args=[1], seconds=5, id="dup")
    second.add_task(job, "interval", args=[2], seconds=5, id="other")
    with pytest.raises(ConflictIdError, match="'dup'"):
        second.start()
    assert not second.running
    pending = sorted(info["id"] for info in second.get_task_infos() if info["pending"])
    assert pending == ["dup", "other"]  # nothing lost
    second.add_task(job, "interval", args=[3], seconds=5, id="dup", replace_existing=True)
    second.start()
    try:
        stored = {t.id: t.args for t in second.get_tasks()}
        assert stored == {"dup": (3,), "other": (2,)}
    finally:
        second.shutdown()


# -- found by users: each mistake fails at add_task, naming the value ---------------------


def test_an_interval_too_long_to_compute_is_refused_at_add_task(
    scheduler: BackgroundScheduler,
) -> None:
    # it used to be accepted, and overflowed (stopping the store) when advanced
    with pytest.raises(InvalidTriggerError, match="days=3000000"):
        scheduler.add_task(job, "interval", args=[1], days=3_000_000)
    with pytest.raises(InvalidTriggerError, match="nan"):
        scheduler.add_task(job, "interval", args=[1], seconds=math.nan)
    with pytest.raises(InvalidTriggerError, match=r"jitter.*got 10"):
        scheduler.add_task(job, "interval", args=[1], seconds=5, jitter=10)


def test_apscheduler_spellings_get_the_tickwork_name(scheduler: BackgroundScheduler) -> None:
    # add_task takes misfire_grace_time as mistrigger_grace_time (tests/schedulers/
    # test_spellings.py); a trigger refuses it, naming the option of add_task
    task = scheduler.add_task(job, "interval", args=[1], seconds=5, misfire_grace_time=5)
    assert task.mistrigger_grace_time == 5
    with pytest.raises(InvalidTriggerError) as caught:
        create_trigger("interval", seconds=5, misfire_grace_time=5)
    message = str(caught.value)
    unknown, _, accepted = message.partition(";")
    assert "'misfire_grace_time'" in unknown
    assert "'mistrigger_grace_time'" in unknown
    # only the unknown keyword is called unknown, not the valid ones given with it
    assert "seconds" not in unknown
    assert "timezone" not in unknown
    assert "seconds" in accepted  # the keywords it does take follow
    # start_date / end_date are taken as the synonyms of start_at / end_at
    task = scheduler.add_task(
        job, "interval", args=[1], seconds=5, start_date=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert isinstance(task.trigger, IntervalTrigger)
    assert task.trigger.start_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("keyword", "suggestion"),
    [("secs", "'seconds'"), ("max_instance", "'max_instances'"), ("misfire_grace", "'mistrigger")],
)
def test_misspelt_keywords_get_a_suggestion(
    scheduler: BackgroundScheduler, keyword: str, suggestion: str
) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        scheduler.add_task(job, "interval", args=[1], minutes=5, **{keyword: 2})
    unknown = str(caught.value).partition(";")[0]
    assert repr(keyword) in unknown
    assert suggestion in unknown


@pytest.mark.parametrize("value", ["no", "false", 0, 1, None, [True]])
def test_coalesce_must_be_a_bool(scheduler: BackgroundScheduler, value: object) -> None:
    # bool("no") is True: a string was silently read as "yes"
    with pytest.raises(InvalidTaskError, match=rf"coalesce.*{re.escape(repr(value))}"):
        scheduler.add_task(job, args=[1], coalesce=value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (math.nan, ["nan"]),
        (math.inf, ["inf", "None"]),
        (-1, ["-1"]),
        (timedelta(seconds=-5), ["days=-1"]),
        (0, ["got 0", "None", "small positive"]),
        (0.0, ["got 0.0", "None"]),
        (timedelta(0), ["timedelta(0)", "None"]),
        ("5", ["'5'"]),
        (True, ["True"]),
    ],
)
def test_grace_time_must_be_a_positive_finite_time_or_none(
    scheduler: BackgroundScheduler, value: object, words: list[str]
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        scheduler.add_task(job, args=[1], mistrigger_grace_time=value)
    message = str(caught.value)
    assert "mistrigger_grace_time" in message
    for word in words:
        assert word in message
    with pytest.raises(InvalidTaskError, match="mistrigger_grace_time"):
        BackgroundScheduler(task_defaults={"mistrigger_grace_time": value})


def test_small_positive_grace_times_and_none_are_fine(scheduler: BackgroundScheduler) -> None:
    assert scheduler.add_task(job, args=[1], mistrigger_grace_time=0.005)
    assert scheduler.add_task(job, args=[1], mistrigger_grace_time=timedelta(milliseconds=5))
    assert scheduler.add_task(job, args=[1], mistrigger_grace_time=None)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (1, ["args", "1", "args=[1]"]),
        (0, ["args", "0", "args=[0]"]),  # 0 is not "no arguments"
        (2.5, ["args", "2.5"]),
        ("ab", ["args", "'ab'", "args=['ab']"]),
        (b"ab", ["args", "b'ab'"]),
        ({"a": 1}, ["args", "{'a': 1}", "kwargs"]),
        ({1, 2}, ["args", "{1, 2}", "order"]),
    ],
)
def test_args_that_are_not_a_list_of_arguments(
    scheduler: BackgroundScheduler, args: object, words: list[str]
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        scheduler.add_task(job, args=args)
    for word in words:
        assert word in str(caught.value)


def test_kwargs_that_are_not_a_mapping_of_names(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(InvalidTaskError, match=r"kwargs.*\[\('b', 2\)\].*dict"):
        scheduler.add_task(job, args=[1], kwargs=[("b", 2)])
    with pytest.raises(InvalidTaskError, match=r"kwargs.*0"):
        scheduler.add_task(job, args=[1], kwargs=0)
    with pytest.raises(InvalidTaskError, match=r"kwargs.*strings.*got 1 in"):
        scheduler.add_task(job, args=[1], kwargs={1: 2})
    assert scheduler.add_task(job, args=(1,), kwargs=None).kwargs == {}
    assert scheduler.add_task(job, args=iter([1, 2])).args == (1, 2)


def test_a_pytz_scheduler_zone_becomes_its_zoneinfo_equivalent() -> None:
    pytz = pytest.importorskip("pytz")
    scheduler = BackgroundScheduler(timezone=pytz.timezone("America/New_York"))
    assert scheduler.timezone == ZoneInfo("America/New_York")
    task = scheduler.add_task(job, "cron", args=[1], hour=8)
    assert isinstance(task.trigger, CronTrigger)
    fire_time = task.trigger.get_next_trigger_time(
        scheduler.timezone, None, datetime(2026, 5, 1, tzinfo=UTC)
    )
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-01T08:00:00-04:00"


@pytest.mark.parametrize("value", ["yes", "replace", "KEEP", 1, 0, None])
def test_replace_existing_is_true_false_or_keep(
    scheduler: BackgroundScheduler, value: object
) -> None:
    # a truthy string must not quietly mean True
    for add in (
        lambda: scheduler.add_task(job, args=[1], id="x", replace_existing=value),
        lambda: scheduler.add_task(args=[1], id="y", replace_existing=value),  # decorator
    ):
        with pytest.raises(ConfigurationError) as caught:
            add()
        message = str(caught.value)
        assert f"replace_existing must be True, False or 'keep', got {value!r}" in message
    assert scheduler.get_tasks() == []
