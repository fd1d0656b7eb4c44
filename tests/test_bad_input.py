"""Every mistake raises a specific tickwork error, at the call that made it, naming the value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
from tickwork.triggers import IntervalTrigger


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
    with pytest.raises(ConfigurationError, match="misfire_grace_time"):
        BackgroundScheduler(task_defaults={"misfire_grace_time": 5})
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
