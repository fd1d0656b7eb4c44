"""The names of ../shared/api.md are importable, ``__all__`` lists what each module
exports, and ``import tickwork`` stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

CONTRACT = {
    "tickwork": ["__version__", "AsyncIOScheduler", "BackgroundScheduler", "Task"],
    "tickwork.schedulers": ["AsyncIOScheduler", "NativeAsyncIOScheduler", "BackgroundScheduler"],
    "tickwork.tasks": ["Task"],
    "tickwork.triggers": [
        "BaseTrigger",
        "DateTrigger",
        "IntervalTrigger",
        "CronTrigger",
        "ShutdownTrigger",
        "AndTrigger",
        "OrTrigger",
    ],
    "tickwork.stores": ["BaseStore", "MemoryStore", "FileStore", "SQLAlchemyStore", "RedisStore"],
    "tickwork.executors": [
        "BaseExecutor",
        "AsyncIOExecutor",
        "ThreadPoolExecutor",
        "ProcessPoolExecutor",
        "DebugExecutor",
    ],
    "tickwork.locks": ["FileLockProtected", "NullLockProtected"],
    "tickwork.events": [
        "SCHEDULER_STARTED",
        "SCHEDULER_SHUTDOWN",
        "SCHEDULER_PAUSED",
        "SCHEDULER_RESUMED",
        "TASK_ADDED",
        "TASK_REMOVED",
        "TASK_MODIFIED",
        "TASK_SUBMITTED",
        "TASK_MAX_INSTANCES",
        "TASK_EXECUTED",
        "TASK_ERROR",
        "TASK_MISSED",
        "ALL_EVENTS",
    ],
    "tickwork.utils": ["make_function", "make_async_function", "obj_to_ref", "ref_to_obj"],
    "tickwork.exceptions": [
        "TickworkError",
        "TaskLookupError",
        "ConflictIdError",
        "SchedulerNotRunningError",
        "SchedulerAlreadyRunningError",
        "MaxInstancesReachedError",
        "SerializationError",
    ],
}


@pytest.mark.parametrize("module_name", sorted(CONTRACT))
def test_contract_names_are_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in CONTRACT[module_name]:
        assert hasattr(module, name), f"{module_name}.{name} is missing"
        if name != "__version__":
            assert name in module.__all__, f"{name} not in {module_name}.__all__"


@pytest.mark.parametrize("module_name", sorted(CONTRACT))
def test_all_lists_only_real_names_with_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value) and not isinstance(value, int):
            assert value.__doc__, f"{module_name}.{name} has no docstring"


def test_event_codes_are_distinct_bit_flags() -> None:
    import tickwork.events as events

    codes = [getattr(events, name) for name in CONTRACT["tickwork.events"] if name != "ALL_EVENTS"]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert code & (code - 1) == 0
        assert events.ALL_EVENTS & code


def test_import_tickwork_does_not_import_sqlalchemy_or_redis() -> None:
    code = "import sys, tickwork, tickwork.stores, tickwork.schedulers; " + (
        "print(sorted(m for m in ('sqlalchemy', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_marker_is_shipped() -> None:
    import pathlib

    import tickwork

    assert (pathlib.Path(tickwork.__file__).parent / "py.typed").exists()
