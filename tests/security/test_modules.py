"""allowed_modules: references checked before anything is imported
(tickwork/security/modules.py, and ref_to_obj / the pickle serializer under it)."""

from __future__ import annotations

import pickle
import sys

import pytest

from tickwork.exceptions import ModuleNotAllowedError, SerializationError
from tickwork.schedulers import BackgroundScheduler
from tickwork.security.modules import ModulePolicy, restricted_loads
from tickwork.utils import ref_to_obj

POLICY = ModulePolicy(("json",))
#: A stdlib module no test imports (what an attacker's record might name).
UNUSED = "this"  # "import this" prints the Zen of Python: a visible side effect


def test_a_module_outside_the_list_is_refused_before_it_is_imported() -> None:
    assert UNUSED not in sys.modules
    with POLICY.active(), pytest.raises(ModuleNotAllowedError, match=r"'this:s'.*'json'"):
        ref_to_obj(f"{UNUSED}:s")
    assert UNUSED not in sys.modules


def test_an_already_imported_module_is_refused_too() -> None:
    assert ref_to_obj("os:getcwd")  # cached now
    with POLICY.active(), pytest.raises(ModuleNotAllowedError):
        ref_to_obj("os:getcwd")


def test_listed_modules_their_submodules_and_tickwork_triggers_are_allowed() -> None:
    with POLICY.active():
        assert ref_to_obj("json:dumps")
        assert ref_to_obj("json.decoder:JSONDecoder")
        assert ref_to_obj("tickwork.triggers.interval:IntervalTrigger")
        assert ref_to_obj("builtins:ValueError") is ValueError  # retry_on classes
        with pytest.raises(ModuleNotAllowedError):
            ref_to_obj("builtins:eval")
        with pytest.raises(ModuleNotAllowedError):
            ref_to_obj("jsonx:thing")  # a prefix, not a sub-module


def test_a_pickle_naming_a_global_outside_the_list_is_refused() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, ("echo pwned",))

    data = pickle.dumps({"x": Evil()})
    with POLICY.active(), pytest.raises(ModuleNotAllowedError, match="system"):
        restricted_loads(data)
    plain = pickle.dumps({"when": __import__("datetime").datetime(2026, 1, 1), "s": {1}})
    with POLICY.active():
        assert restricted_loads(plain)["s"] == {1}


def test_the_pickle_serializer_refuses_such_a_pickle_as_a_load_error() -> None:
    from tickwork.serializers import PickleSerializer

    data = pickle.dumps({"id": "t", "fn": "os:system", "x": __import__("os").system})
    with POLICY.active(), pytest.raises(SerializationError, match="allowed_modules"):
        PickleSerializer().deserialize(data)


def test_task_defaults_can_hold_allowed_modules() -> None:
    scheduler = BackgroundScheduler(task_defaults={"allowed_modules": ["myapp"]})
    with pytest.raises(ModuleNotAllowedError, match="myapp"):
        scheduler.add_task(print, "interval", seconds=1)
    assert "allowed_modules" not in scheduler.task_defaults


def test_trigger_and_retry_on_classes_are_checked_when_added() -> None:
    from retry_error_funcs import Flaky

    scheduler = BackgroundScheduler(allowed_modules=["json"])
    with pytest.raises(ModuleNotAllowedError, match="retry_error_funcs:Flaky"):
        scheduler.add_task("json:dumps", "interval", seconds=1, args=[1], retry_on=Flaky)
    scheduler.add_task("json:dumps", "interval", seconds=1, args=[1], retry_on=KeyError)


def test_an_update_to_a_function_outside_the_list_is_refused_and_changes_nothing() -> None:
    scheduler = BackgroundScheduler(allowed_modules=["json"])
    scheduler.add_task("json:dumps", "interval", seconds=1, args=[1], id="t")
    with pytest.raises(ModuleNotAllowedError, match=r"(posix|os):system"):
        scheduler.update_task("t", fn="os:system")
    task = scheduler.get_task("t")
    assert task is not None
    assert task.fn is __import__("json").dumps
    scheduler.start(paused=True)
    try:
        with pytest.raises(ModuleNotAllowedError):
            scheduler.update_task("t", fn="os:system")
        task = scheduler.get_task("t")
        assert task is not None
        assert task.fn is __import__("json").dumps
    finally:
        scheduler.shutdown()
