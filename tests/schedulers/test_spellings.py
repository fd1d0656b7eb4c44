"""Code written for asyncz or APScheduler 3 either works or fails naming the tickwork
spelling: ``fn=``, APScheduler 3's keywords of ``add_task`` and of the constructor, its
``task_defaults`` keys and method names, and a trigger alias passed where the function
goes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickwork.exceptions import ConfigurationError, InvalidTaskError
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import MemoryStore
from tickwork.triggers import IntervalTrigger


def job() -> None:
    """The task body."""


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(timezone="UTC")
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)


# -- add_task --------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["fn", "func"])
def test_the_function_as_a_keyword_is_scheduled(
    scheduler: BackgroundScheduler, keyword: str
) -> None:
    # asyncz users write fn=; it used to return a decorator and schedule nothing
    task = scheduler.add_task(trigger="interval", seconds=1, id="x", **{keyword: job})
    assert task.fn is job
    assert isinstance(task.trigger, IntervalTrigger)
    stored = scheduler.get_task("x")
    assert stored is not None
    assert stored.fn is job
    scheduler.start()
    stored = scheduler.get_task("x")
    assert stored is not None
    assert stored.fn is job


def test_the_function_given_twice_is_refused(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        scheduler.add_task(job, "interval", seconds=1, fn=job)
    message = str(caught.value)
    assert "fn" in message
    assert "not both" in message
    assert scheduler.get_tasks() == []


@pytest.mark.parametrize(
    ("call", "alias"),
    [
        (lambda s: s.add_task("interval", seconds=5), "interval"),
        (lambda s: s.add_task("cron"), "cron"),
        (lambda s: s.add_task("date", run_at="2030-01-01"), "date"),
    ],
)
def test_a_trigger_alias_where_the_function_goes(
    scheduler: BackgroundScheduler, call: object, alias: str
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        call(scheduler)  # type: ignore[operator]
    message = str(caught.value)
    assert f"{alias!r} is a trigger alias" in message
    assert "where the function goes" in message
    assert f"add_task(fn, {alias!r}" in message
    # it used to blame the date trigger ("does not take 'seconds'")
    assert "DateTrigger" not in message
    assert scheduler.get_tasks() == []


def test_apscheduler_keywords_of_add_task_are_taken(tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(timezone="UTC", stores={"other": MemoryStore()})
    task = scheduler.add_task(
        job, "interval", seconds=5, id="x", misfire_grace_time=30, jobstore="other"
    )
    assert task.mistrigger_grace_time == 30
    assert task.store_alias == "other"
    decorated = scheduler.add_task(trigger="interval", seconds=5, id="d", misfire_grace_time=7)
    decorated(job)
    scheduler.start()
    try:
        assert scheduler.get_task("x", store="other") is not None
        found = scheduler.get_task("d")
        assert found is not None
        assert found.mistrigger_grace_time == 7
        # also on a running scheduler, and with a prepared task
        again = scheduler.add_task(job, seconds=5, trigger="interval", misfire_grace_time=None)
        assert again.mistrigger_grace_time is None
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (
            {"misfire_grace_time": 5, "mistrigger_grace_time": 6},
            ["misfire_grace_time", "mistrigger_grace_time", "not both"],
        ),
        ({"jobstore": "a", "store": "b"}, ["jobstore", "'store'", "not both"]),
        ({"func": job, "fn": job}, ["func", "fn", "not both"]),
    ],
)
def test_both_spellings_at_once_are_refused(
    scheduler: BackgroundScheduler, given: dict[str, object], words: list[str]
) -> None:
    options: dict[str, Any] = {"trigger": "interval", "seconds": 5, **given}
    if "fn" not in given:
        options["fn_or_task"] = job
    with pytest.raises(ConfigurationError) as caught:
        scheduler.add_task(**options)
    for word in words:
        assert word in str(caught.value)


def test_an_unknown_keyword_still_names_the_tickwork_spelling(
    scheduler: BackgroundScheduler,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        scheduler.add_task(job, "interval", seconds=5, misfire_grace=3)
    assert "'misfire_grace'" in str(caught.value)
    assert "'mistrigger_grace_time'" in str(caught.value)


# -- the constructor ---------------------------------------------------------------------------


def test_apscheduler_keywords_of_the_constructor_are_taken() -> None:
    store = MemoryStore()
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        job_defaults={"misfire_grace_time": 30, "coalesce": False, "max_instances": 3},
    )
    rules = ("coalesce", "max_instances", "mistrigger_grace_time")
    assert {key: scheduler.task_defaults[key] for key in rules} == {
        "coalesce": False,
        "max_instances": 3,
        "mistrigger_grace_time": 30,
    }
    task = scheduler.add_task(job, "interval", seconds=5)
    assert (task.coalesce, task.max_instances, task.mistrigger_grace_time) == (False, 3, 30)
    scheduler.start()
    try:
        assert scheduler.get_scheduler_info()["stores"] == {"default": "MemoryStore"}
        assert store.lookup_task(task.id) is not None
    finally:
        scheduler.shutdown(wait=False)


def test_misfire_grace_time_is_a_task_defaults_key_too() -> None:
    scheduler = BackgroundScheduler(task_defaults={"misfire_grace_time": 12})
    assert scheduler.task_defaults["mistrigger_grace_time"] == 12


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"stores": {}, "jobstores": {}}, ["jobstores", "'stores'", "not both"]),
        (
            {"task_defaults": {}, "job_defaults": {}},
            ["job_defaults", "'task_defaults'", "not both"],
        ),
        (
            {"task_defaults": {"misfire_grace_time": 1, "mistrigger_grace_time": 2}},
            ["misfire_grace_time", "mistrigger_grace_time", "not both"],
        ),
    ],
)
def test_both_constructor_spellings_at_once_are_refused(
    options: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BackgroundScheduler(**options)  # type: ignore[arg-type]
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("key", "hint"),
    [("misfire_grace", "'mistrigger_grace_time'"), ("max_instance", "'max_instances'")],
)
def test_an_unknown_task_defaults_key_gets_the_right_spelling(key: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BackgroundScheduler(task_defaults={key: 1})
    message = str(caught.value)
    unknown, _, accepted = message.partition(";")
    assert f"task_defaults does not take {key!r}" in unknown
    assert hint in unknown
    assert "coalesce" in accepted
    assert "mistrigger_grace_time" in accepted


# -- method names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("add_job", "add_task"),
        ("get_job", "get_task"),
        ("get_jobs", "get_tasks"),
        ("modify_job", "update_task"),
        ("reschedule_job", "reschedule_task"),
        ("pause_job", "pause_task"),
        ("resume_job", "resume_task"),
        ("remove_job", "delete_task"),
        ("remove_all_jobs", "remove_all_tasks"),
        ("add_jobstore", "add_store"),
        ("remove_jobstore", "remove_store"),
        ("scheduled_job", "add_task"),
        ("print_jobs", "get_task_infos"),
        ("lookup_task", "get_task"),
        ("configure", "constructor"),
        ("setup", "constructor"),
    ],
)
def test_an_apscheduler_or_asyncz_method_name_names_the_tickwork_one(
    scheduler: BackgroundScheduler, old: str, new: str
) -> None:
    with pytest.raises(AttributeError) as caught:
        getattr(scheduler, old)
    message = str(caught.value)
    assert repr(old) in message
    assert new in message
    assert caught.value.name == old
    assert caught.value.obj is scheduler
    assert not hasattr(scheduler, old)
    if new.endswith("task") or new.endswith("tasks") or new.endswith("store"):
        assert callable(getattr(scheduler, new))


def test_other_missing_attributes_are_plain_attribute_errors(
    scheduler: BackgroundScheduler,
) -> None:
    with pytest.raises(AttributeError) as caught:
        scheduler.frobnicate  # type: ignore[attr-defined]  # noqa: B018
    assert str(caught.value) == "'BackgroundScheduler' object has no attribute 'frobnicate'"
    assert caught.value.name == "frobnicate"


# -- store and executor options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "words", "absent"),
    [
        (
            lambda s, tmp: s.add_store("memory", "x", bogus=1),
            ["store 'memory' (MemoryStore) does not take 'bogus'", "it takes no options"],
            [],
        ),
        (
            lambda s, tmp: s.add_store("file", "x", directory=tmp, cleanup_dir=True),
            [
                "does not take 'cleanup_dir' (did you mean 'cleanup_directory'?)",
                "it takes: directory",
            ],
            ["'directory'"],
        ),
        (
            lambda s, tmp: s.add_executor("threadpool", "x", max_worker=3),
            [
                "executor 'threadpool' (ThreadPoolExecutor) does not take 'max_worker'",
                "'max_workers'",
            ],
            [],
        ),
        (
            lambda s, tmp: BackgroundScheduler(
                stores={"default": {"type": "sqlalchemy", "url": "sqlite://", "table": "t"}}
            ),
            ["does not take 'table' (did you mean 'tablename'?)"],
            ["'url'"],
        ),
    ],
)
def test_plugin_options_name_only_the_unknown_ones(
    scheduler: BackgroundScheduler,
    tmp_path: Path,
    build: object,
    words: list[str],
    absent: list[str],
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(scheduler, tmp_path)  # type: ignore[operator]
    message = str(caught.value)
    for word in words:
        assert word in message
    unknown = message.partition(";")[0]
    for word in absent:  # options given rightly are not called unknown
        assert word not in unknown


def test_a_plugin_missing_a_required_option_says_so(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(ConfigurationError) as caught:
        scheduler.add_store("file", "x")
    message = str(caught.value)
    assert "FileStore" in message
    assert "directory" in message
    assert "does not take" not in message
