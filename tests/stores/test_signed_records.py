"""Records another party writes into a store never run once the scheduler signs its
records (``signing_key``), on every persistent backend: a forged row, task file or
Redis hash is set aside (kept, logged once, ``TASK_SET_ASIDE``) and never imported;
keys rotate without stopping old tasks; encrypted arguments are not in the raw data;
``allowed_modules`` refuses a module before it is imported (issue 18)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storetest_funcs import at, noop
from storetest_support import StoreMaker
from test_hostile_records import replace_stored_bytes, stored_bytes
from test_retry_records import record, retry

from tickwork.events import TASK_EXECUTED, TASK_SET_ASIDE
from tickwork.exceptions import ModuleNotAllowedError, RecordSignatureError
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.security.policy import SecurityPolicy
from tickwork.security.signing import key_id
from tickwork.serializers import JSONSerializer

KEY = b"k" * 32
OLD_KEY = b"o" * 32
SECRET = "secret-argument-5e1f"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def scheduler_on(store: Any, **security: Any) -> BackgroundScheduler:
    return BackgroundScheduler(
        stores={"default": store},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        **security,
    )


def forged(data: bytes, fn: str, args: list[Any]) -> bytes:
    """An unsigned JSON task document like ``data`` but running ``fn(*args)``."""
    document = json.loads(data)
    document["task"].update(fn=fn, args=args)
    return json.dumps(document, separators=(",", ":")).encode()


def plain_bytes(store: Any, task_id: str) -> bytes:
    """A valid unsigned JSON record for ``task_id`` (as an attacker could write)."""
    task = store.lookup_task(task_id)
    return JSONSerializer().serialize(task)


def run_with_forgery(
    make_persistent_store: StoreMaker, forgery: Callable[[Any], bytes], **security: Any
) -> list[Any]:
    """Add a good 0.1 s task and a 'bad' one, replace bad's record with ``forgery(store)``,
    run until the good task ran a few times; return the events."""
    store = make_persistent_store(start=False)
    events: list[Any] = []
    scheduler = scheduler_on(store, **security)
    scheduler.add_listener(events.append, TASK_EXECUTED | TASK_SET_ASIDE)
    scheduler.add_task(noop, "interval", seconds=0.1, id="good")
    scheduler.add_task(noop, "interval", seconds=0.1, id="bad")
    scheduler.start(paused=True)
    try:
        replace_stored_bytes(store, "bad", forgery(store))
        scheduler.resume()
        wait_until(lambda: sum(e.code == TASK_EXECUTED for e in events) >= 3)
        time.sleep(0.3)
    finally:
        scheduler.shutdown()
    assert all(e.task_id == "good" for e in events if e.code == TASK_EXECUTED)
    return events


def test_a_forged_unsigned_record_never_runs(
    make_persistent_store: StoreMaker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    events = run_with_forgery(
        make_persistent_store,
        lambda store: forged(plain_bytes(store, "bad"), "forbidden_module:run", [str(marker)]),
        signing_key=KEY,
    )
    assert not marker.exists()
    assert "forbidden_module" not in sys.modules
    refused = [e for e in events if e.code == TASK_SET_ASIDE]
    assert len(refused) == 1, refused  # reported once, not once per pass
    assert refused[0].task_id == "bad"
    assert isinstance(refused[0].exception, RecordSignatureError)
    assert "not signed" in str(refused[0].exception)
    assert any("'bad'" in r.getMessage() and "not signed" in r.getMessage() for r in caplog.records)


def test_a_signed_record_changed_afterwards_never_runs(
    make_persistent_store: StoreMaker, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    def tamper(store: Any) -> bytes:
        signed = stored_bytes(store, "bad")
        header, _, payload = signed.partition(b"\n")
        return header + b"\n" + forged(payload, "os:system", [f"touch {marker}"])

    events = run_with_forgery(make_persistent_store, tamper, signing_key=KEY)
    assert not marker.exists()
    refused = [e for e in events if e.code == TASK_SET_ASIDE]
    assert [type(e.exception) for e in refused] == [RecordSignatureError]
    assert "does not match" in str(refused[0].exception)


def test_a_record_signed_with_another_key_never_runs(make_persistent_store: StoreMaker) -> None:
    def other_key(store: Any) -> bytes:
        from tickwork.security.signing import Signer

        return Signer(b"x" * 32).sign(plain_bytes(store, "bad"))

    events = run_with_forgery(make_persistent_store, other_key, signing_key=KEY)
    refused = [e for e in events if e.code == TASK_SET_ASIDE]
    assert [type(e.exception) for e in refused] == [RecordSignatureError]
    assert key_id(b"x" * 32) in str(refused[0].exception)


def test_a_module_outside_allowed_modules_is_never_imported(
    make_persistent_store: StoreMaker, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    events = run_with_forgery(
        make_persistent_store,
        lambda store: forged(plain_bytes(store, "bad"), "forbidden_module:run", [str(marker)]),
        allowed_modules=("storetest_funcs",),
    )
    assert "forbidden_module" not in sys.modules
    assert not marker.exists()
    refused = [e for e in events if e.code == TASK_SET_ASIDE]
    assert len(refused) == 1
    assert refused[0].task_id == "bad"
    assert "allowed_modules" in str(refused[0].exception)


def test_a_task_outside_allowed_modules_is_refused_when_added(
    make_store: StoreMaker,
) -> None:
    scheduler = scheduler_on(make_store(start=False), allowed_modules=("myapp.tasks",))
    with pytest.raises(ModuleNotAllowedError, match=r"storetest_funcs:noop.*myapp\.tasks"):
        scheduler.add_task(noop, "interval", seconds=1, id="t")
    assert scheduler.get_tasks() == []


def test_rotation_keeps_old_tasks_running_and_resign_moves_them_to_the_new_key(
    make_persistent_store: StoreMaker,
) -> None:
    first = scheduler_on(make_persistent_store(start=False), signing_key=OLD_KEY)
    first.add_task(noop, "interval", seconds=0.1, id="busy")
    first.add_task(noop, "interval", seconds=3600, id="idle")  # not rewritten by runs
    first.start(paused=True)
    first.shutdown()

    store = make_persistent_store(start=False)
    old_header = b"TWS1 " + key_id(OLD_KEY).encode()
    assert stored_bytes(store, "busy").startswith(old_header)
    events: list[Any] = []
    second = scheduler_on(store, signing_key=KEY, old_signing_keys=[OLD_KEY])
    second.add_listener(events.append, TASK_EXECUTED | TASK_SET_ASIDE)
    second.start()
    try:
        wait_until(lambda: sum(e.code == TASK_EXECUTED for e in events) >= 2)
        assert stored_bytes(store, "idle").startswith(old_header)
        assert second.resign_tasks() == 2
        for task_id in ("busy", "idle"):
            assert stored_bytes(store, task_id).startswith(b"TWS1 " + key_id(KEY).encode())
    finally:
        second.shutdown()
    assert not [e for e in events if e.code == TASK_SET_ASIDE]

    third = scheduler_on(make_persistent_store(start=False), signing_key=KEY)
    third.start(paused=True)
    try:
        assert sorted(t.id for t in third.get_tasks()) == ["busy", "idle"]
    finally:
        third.shutdown()


def test_encrypted_arguments_are_not_in_the_raw_data(make_persistent_store: StoreMaker) -> None:
    pytest.importorskip("cryptography")
    key = b"e" * 32
    store = make_persistent_store(start=False)
    scheduler = scheduler_on(store, encryption_key=key, signing_key=KEY)
    scheduler.add_task(noop, "interval", seconds=60, id="t", args=[SECRET], kwargs={"k": SECRET})
    scheduler.start(paused=True)
    try:
        raw = stored_bytes(store, "t")
        assert SECRET.encode() not in raw
        assert b"storetest_funcs" not in raw  # the whole record is sealed
        task = scheduler.get_task("t")
        assert task is not None
        assert task.args == (SECRET,)
        assert task.kwargs == {"k": SECRET}
    finally:
        scheduler.shutdown()
    # Without the key the record does not load (and is not mistaken for a plain one).
    reader = scheduler_on(make_persistent_store(start=False), signing_key=KEY)
    reader.start(paused=True)
    try:
        assert reader.get_tasks() == []
    finally:
        reader.shutdown()


def protected(store: Any, refused: list[Any]) -> Any:
    """``store`` with the signing of a scheduler given ``signing_key=KEY``, started."""
    SecurityPolicy(signing_key=KEY).protect(
        store, "default", lambda alias, task_id, exc: refused.append((task_id, exc))
    )
    store.start("default")
    return store


@pytest.mark.parametrize("writer_signs", [True, False])
def test_a_forged_pending_retry_is_never_handed_out(
    make_persistent_store: StoreMaker, writer_signs: bool
) -> None:
    refused: list[Any] = []
    writer = make_persistent_store(start=False)
    writer = protected(writer, refused) if writer_signs else make_persistent_store()
    record(writer, "me", "a", -1)
    writer.retry_runs("me", [retry("a", -1, 2, 3)])
    reader = protected(make_persistent_store(start=False), refused)
    taken = reader.take_over_runs(at(5), 10, "heir", at(6))
    if writer_signs:  # the control: a retry the fleet wrote is handed out
        assert [(run.task.id, run.attempt) for run in taken] == [("a", 2)]
        assert refused == []
    else:
        assert taken == []
        assert refused
        assert all(isinstance(exc, RecordSignatureError) for _, exc in refused)


def test_in_a_fleet_no_member_runs_a_forged_record(
    make_shared_store: StoreMaker, tmp_path: Path
) -> None:
    """Two schedulers with the same key on one shared store: the fleet's own task runs,
    the forged one is set aside by every member that meets it and run by none."""
    marker = tmp_path / "pwned"
    events: list[Any] = []
    members = [scheduler_on(make_shared_store(start=False), signing_key=KEY) for _ in range(2)]
    members[0].add_task(noop, "interval", seconds=0.1, id="good")
    members[0].add_task(noop, "interval", seconds=0.1, id="bad")
    for member in members:
        member.add_listener(events.append, TASK_EXECUTED | TASK_SET_ASIDE)
        member.start(paused=True)
    try:
        store = members[0]._plugins.stores["default"]
        bad = forged(plain_bytes(store, "bad"), "forbidden_module:run", [str(marker)])
        replace_stored_bytes(store, "bad", bad)
        for member in members:
            member.resume()
        wait_until(lambda: sum(e.code == TASK_EXECUTED for e in events) >= 4)
        time.sleep(0.3)
    finally:
        for member in members:
            member.shutdown()
    assert not marker.exists()
    assert "forbidden_module" not in sys.modules
    assert {e.task_id for e in events if e.code == TASK_EXECUTED} == {"good"}
    refused = [e for e in events if e.code == TASK_SET_ASIDE]
    assert refused
    assert {e.task_id for e in refused} == {"bad"}
    assert all(isinstance(e.exception, RecordSignatureError) for e in refused)


def test_an_admin_process_with_the_key_reads_and_writes_a_signed_store(tmp_path: Path) -> None:
    from tickwork.admin import open_admin

    url = f"sqlite:///{tmp_path / 'tasks.sqlite'}"
    fleet = BackgroundScheduler(
        stores={"default": {"type": "sqlalchemy", "url": url}}, signing_key=KEY
    )
    fleet.add_task(noop, "interval", seconds=60, id="t")
    fleet.start(paused=True)
    fleet.shutdown()
    admin = open_admin(url, signing_key=KEY)
    try:
        admin.pause_task("t")
        assert [task.id for task in admin.get_tasks()] == ["t"]
    finally:
        admin.shutdown()
    blind = open_admin(url)
    try:
        assert blind.get_tasks() == []  # without the key nothing loads
    finally:
        blind.shutdown()
