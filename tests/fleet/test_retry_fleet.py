"""Retries and cancelling across a fleet: 3 named scheduler processes on one store
(PostgreSQL, then Redis).

* A run that fails twice and succeeds on its third attempt, with the member running an
  attempt SIGKILLed in the middle of it, or right after its attempt failed: every
  attempt is made once (the task's own file of attempts shows it), each has exactly one
  record, the killed member's attempt ends "error" once, and the run ends "success".
* ``cancel_run`` from a scheduler that runs nothing: the member running the run cancels
  it within its lease-renewal interval, and the record says "cancelled".

Run with ``-s`` to see the attempts and who made them.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fleet_support import Fleet, add_tasks, fleet
from history_support import LEASE, read_run_log, shared_store, start_members

from tickwork.runs import RunRecord
from tickwork.schedulers import BackgroundScheduler
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

pytestmark = pytest.mark.slow

BACKENDS = [
    pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("redis", marks=pytest.mark.external_service("redis")),
]
MEMBERS = ("member-a", "member-b", "member-c")
#: How long each attempt runs: a kill 0.3 s into it finds it in progress.
ATTEMPT_SECONDS = 1.0


def flaky_task(attempts_file: Path, **fields: object) -> Task:
    """A one-shot run, due in 1 s, failing its first two attempts (retries 1 s apart)."""
    when = datetime.now(UTC) + timedelta(seconds=1)
    values: dict[str, object] = {
        "coalesce": True,
        "max_instances": 1,
        # Generous: a retry taken over after a kill is still in time.
        "mistrigger_grace_time": 30.0,
        "next_run_time": when,
        "retries": 3,
        "retry_delay": 1.0,
        "retry_backoff": 1.0,
        **fields,
    }
    return Task(
        "fleet_tasks:flaky",
        DateTrigger(when),
        args=[str(attempts_file), 2, ATTEMPT_SECONDS],
        id="flaky",
        **values,  # type: ignore[arg-type]
    )


def attempt_lines(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [
        (word, int(pid))
        for word, pid in (line.split() for line in path.read_text().split("\n") if line)
    ]


def wait_for_line(path: Path, word: str, nth: int, running: Fleet, timeout: float = 20) -> int:
    """Wait until the ``nth`` line starting with ``word`` appears; return its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [pid for what, pid in attempt_lines(path) if what == word]
        if len(found) >= nth:
            return found[nth - 1]
        time.sleep(0.002)
    raise AssertionError(f"no {word} #{nth} in {attempt_lines(path)}\n{running.errors()}")


def check_attempts(log: list[RunRecord], lines: list[tuple[str, int]]) -> dict[int, RunRecord]:
    """Three attempts made, once each; one final record per attempt; the last a success."""
    assert [word for word, _ in lines if word == "start"] == ["start"] * 3, lines
    assert Counter(r.run_id for r in log).most_common(1)[0][1] == 1, log
    by_attempt = {r.attempt: r for r in log}
    assert sorted(by_attempt) == [1, 2, 3], log
    assert [by_attempt[n].outcome for n in (1, 2, 3)] == ["error", "error", "success"], log
    assert len({r.scheduled_run_time for r in log}) == 1
    return by_attempt


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kill", ["mid-retry", "after-failure"])
@pytest.mark.timeout(90)
def test_every_retry_is_made_once_when_a_member_is_killed(
    backend: str, kill: str, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    with shared_store(backend) as (kind, location, store):
        add_tasks(store, [flaky_task(attempts)])
        with fleet(tmp_path, kind, location) as running:
            identities = start_members(running, MEMBERS)
            if kill == "mid-retry":
                # The member making the second attempt, 0.3 s into it.
                victim = wait_for_line(attempts, "start", 2, running)
                time.sleep(0.3)
            else:
                # The member whose first attempt just failed, before it can say so.
                victim = wait_for_line(attempts, "fail", 1, running)
            running.kill(victim)
            wait_for_line(attempts, "ok", 1, running, timeout=30)
            time.sleep(1.5)  # the last records are written (every 0.5 s)
        log = read_run_log(store)
    lines = attempt_lines(attempts)
    print(f"\n{backend}, killed {identities[victim]} ({kill}): {lines}")
    for record in sorted(log, key=lambda r: r.attempt):
        print(f"  #{record.attempt} {record.outcome} by {record.scheduler}: {record.error}")
    by_attempt = check_attempts(log, lines)
    killed = identities[victim]
    if kill == "mid-retry":
        assert by_attempt[2].error == f"abandoned by {killed}"
        assert by_attempt[3].scheduler != killed
    else:
        # Its failure was recorded, or its record expired and was taken over: either
        # way attempt 1 ends "error" once, and the next attempts are the survivors'.
        assert by_attempt[1].error in (
            "ConnectionError: attempt 1 fails on purpose",
            f"abandoned by {killed}",
        )
        assert by_attempt[2].scheduler != killed
        assert by_attempt[3].scheduler != killed


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(60)
def test_cancel_run_reaches_the_member_running_it(backend: str, tmp_path: Path) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1)
    task = Task(
        "fleet_tasks:slow",
        DateTrigger(when),
        args=[60],
        id="long",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=30.0,
        next_run_time=when,
    )
    with shared_store(backend) as (kind, location, store):
        add_tasks(store, [task])
        with fleet(tmp_path, kind, location) as running:
            start_members(running, MEMBERS)
            other = BackgroundScheduler(
                stores={"default": store}, identity="operator", timezone="UTC"
            )
            other.start(paused=True)
            try:
                deadline = time.monotonic() + 15
                runs: list[RunRecord] = []
                while not runs and time.monotonic() < deadline:
                    runs = other.get_runs("long", outcome="running")
                    time.sleep(0.1)
                assert runs, running.errors()
                asked = time.monotonic()
                assert other.cancel_run(runs[0].run_id) is True
                while time.monotonic() < asked + 10:
                    records = other.get_runs("long")
                    if [r.outcome for r in records] == ["cancelled"]:
                        break
                    time.sleep(0.05)
                took = time.monotonic() - asked
            finally:
                other.shutdown()
    print(f"\n{backend}: cancelled on {records[0].scheduler} {took:.2f} s after cancel_run")
    assert [r.outcome for r in records] == ["cancelled"], records
    # Within the renewal interval (a third of the lease), plus the history's write.
    assert took < LEASE / 3 + 1.5
