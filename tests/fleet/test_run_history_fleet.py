"""Run history across a fleet: 3 named scheduler processes on one store (PostgreSQL,
then Redis), one SIGKILLed; afterwards the shared run log must hold exactly one final
record per run and attempt, a success for every run executed, and nothing "running".

Two kill moments: in the middle of a run (its record must end as "abandoned by <the
member>" exactly once, the run tried again or reported missed), and just after a run
ended (the member had let go of the run's lease; its success must be on record).

The members are ``history_worker.py`` processes (``fleet_worker.py`` with an identity);
what they executed comes from their event lines (``fleet_support.read_records``), what
they recorded from ``get_runs()`` of a paused scheduler opened on the store afterwards.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fleet_support import Fleet, Record, add_tasks, fleet, interval_task
from fleet_worker import make_store
from history_support import LEASE, read_run_log, shared_store, start_members

from tickwork.runs import RunRecord, make_run_id
from tickwork.stores import BaseStore
from tickwork.tasks import Task

pytestmark = pytest.mark.slow

MEMBERS = ("member-a", "member-b", "member-c")
#: Each run lasts this long: a kill 0.2 s into a slot finds the run in progress.
RUN_SECONDS = 0.5
#: Seconds the fleet runs before the kill (at the latest whole second + 0.2 after it),
#: and after it: enough for the take-over (LEASE plus up to 1 s between looks) and a
#: few ordinary slots after it.
BEFORE_KILL = 8.0
AFTER_KILL = 6.0
#: Slots this close to the fleet's start or stop are not required to have a record
#: (members still starting; runs due while the members shut down are nobody's).
MARGIN = 1.5
ABANDONED = "abandoned by "


@dataclass
class Summary:
    """What the tests print with ``-s``."""

    backend: str
    records: list[RunRecord]
    what: str

    def __str__(self) -> str:
        outcomes = Counter(r.outcome for r in self.records)
        members = Counter(r.scheduler for r in self.records)
        attempts = Counter(r.attempt for r in self.records)
        return (
            f"\n{self.backend}: {len(self.records)} run records; by outcome {dict(outcomes)}; "
            f"by scheduler {dict(members)}; by attempt {dict(attempts)}; {self.what}"
        )


def kill_mid_run(running: Fleet, task_ids: list[str]) -> tuple[int, float]:
    """SIGKILL, 0.2 s into a slot, the member running that slot of every task in
    ``task_ids`` (one member usually claims every task due at once; if none ran them
    all, try the next slots); return its pid and the wall time of the kill."""
    for _ in range(5):
        now = time.time()
        time.sleep(math.floor(now) + 1.2 - now)
        records = running.records()
        ended = {(r.pid, r.task_id, r.slot) for r in records if r.code == "EXE"}
        busy: defaultdict[int, set[str]] = defaultdict(set)
        for r in records:
            if r.code == "SUB" and (r.pid, r.task_id, r.slot) not in ended:
                busy[r.pid].add(r.task_id)
        victims = [pid for pid, tasks in busy.items() if tasks >= set(task_ids)]
        if victims:
            return victims[0], running.kill(victims[0])
    raise AssertionError(f"no member was running {task_ids} at once\n{running.errors()}")


def kill_after_run(
    running: Fleet, probe: BaseStore, task_id: str
) -> tuple[Record, float, str | None]:
    """Wait for a run of ``task_id`` to end (an EXE line) and SIGKILL the member that
    ran it as soon as the store shows no run of the task in progress (the member let go
    of the run's lease: from then on no survivor will take the run over). Return the
    run's EXE line, the wall time of the kill, and the outcome of the run's record just
    before the kill (``None``: none yet)."""
    seen = {(r.pid, r.slot) for r in running.records() if r.code == "EXE"}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ended = [
            r
            for r in running.records()
            if r.code == "EXE" and r.task_id == task_id and (r.pid, r.slot) not in seen
        ]
        if not ended:
            time.sleep(0.002)
            continue
        run = ended[0]
        seen.add((run.pid, run.slot))
        # Before the next slot's run starts (at the whole second after it).
        while time.time() < run.slot + 0.9:
            if not probe.count_runs([task_id]).get(task_id):
                at = datetime.fromtimestamp(run.slot, UTC)
                record = probe.run_log.get(make_run_id(task_id, at, 1))
                return run, running.kill(run.pid), None if record is None else record.outcome
            time.sleep(0.002)
    raise AssertionError(f"no run of {task_id} ended and let go of its lease\n{running.errors()}")


RunKey = tuple[str, float, int]  # (task id, scheduled time as epoch seconds, attempt)


def check_records(
    log: list[RunRecord],
    lines: list[Record],
    identities: dict[int, str],
    window: tuple[float, float],
    errors: str,
    exclude: frozenset[tuple[str, float]] = frozenset(),
) -> dict[RunKey, RunRecord]:
    """What holds whatever the kill: one record per run id, a success record for every
    run executed (an EXE line) by the member that ran it and never two for one slot,
    nothing left "running", a record for every slot in ``window``, "missed" only where
    TASK_MISSED was reported. Slots in ``exclude`` are left to the caller's checks.
    Returns the records by (task id, slot, attempt)."""
    ids = Counter(r.run_id for r in log)
    assert [i for i, n in ids.items() if n > 1] == [], errors
    for r in log:
        assert r.run_id == make_run_id(r.task_id, r.scheduled_run_time, r.attempt), r
        assert r.scheduler in MEMBERS, r
    by_run = {(r.task_id, r.scheduled_run_time.timestamp(), r.attempt): r for r in log}
    considered = [r for r in log if (r.task_id, r.scheduled_run_time.timestamp()) not in exclude]

    # The members stopped cleanly (their last runs ended and were recorded) but the
    # victim, whose runs a survivor must have ended: nothing is left "running".
    assert [r for r in considered if r.outcome == "running"] == [], errors

    executed: defaultdict[tuple[str, float], list[str]] = defaultdict(list)
    for line in lines:
        if line.code == "EXE" and (line.task_id, line.slot) not in exclude:
            executed[(line.task_id, line.slot)].append(identities[line.pid])
    successes: defaultdict[tuple[str, float], list[RunRecord]] = defaultdict(list)
    for r in considered:
        if r.outcome == "success":
            successes[(r.task_id, r.scheduled_run_time.timestamp())].append(r)
    assert [found for found in successes.values() if len(found) > 1] == []
    assert sorted(successes) == sorted(executed), errors
    for key, found in successes.items():
        assert found[0].scheduler in executed[key], (found, executed[key])

    # No slot is without a trace: success, max_instances (a run of the task in
    # progress, the victim's counted until taken over), or the take-over's outcome.
    # coalesce=False makes every slot its own run.
    first, last = window
    slots = {(r.task_id, r.scheduled_run_time.timestamp()) for r in log}
    tasks = {r.task_id for r in log}
    lost = [
        (task_id, second)
        for task_id in sorted(tasks)
        for second in range(math.ceil(first), math.floor(last) + 1)
        if (task_id, float(second)) not in slots
    ]
    assert lost == [], f"slots without a record: {lost}\n{errors}"
    reported = {(line.task_id, line.slot) for line in lines if line.code == "MIS"}
    for r in considered:
        if r.outcome == "missed":
            assert (r.task_id, r.scheduled_run_time.timestamp()) in reported, r
    return by_run


def slow_task(task_id: str, **fields: Any) -> Task:
    """A task every second whose runs last RUN_SECONDS. coalesce=False: every slot gets
    its own outcome (coalescing would fold the slots skipped meanwhile away)."""
    return interval_task(
        task_id, "fleet_tasks:slow", 1, args=(RUN_SECONDS,), coalesce=False, **fields
    )


BACKENDS = [
    pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("redis", marks=pytest.mark.external_service("redis")),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(60)
def test_a_member_killed_mid_run_leaves_one_abandoned_record(backend: str, tmp_path: Path) -> None:
    # "patient" runs are run again when abandoned (no grace limit): attempt 2. "strict"
    # ones (1 s grace) are too late by the take-over (LEASE after the kill): missed.
    patient = slow_task("patient", mistrigger_grace_time=None)
    strict = slow_task("strict", mistrigger_grace_time=1.0)
    task_ids = [patient.id, strict.id]
    with shared_store(backend) as (kind, location, store):
        add_tasks(store, [patient, strict])
        with fleet(tmp_path, kind, location) as running:
            identities = start_members(running, MEMBERS)
            first = time.time() + MARGIN
            time.sleep(BEFORE_KILL)
            victim, killed_at = kill_mid_run(running, task_ids)
            time.sleep(AFTER_KILL)
            last = time.time() - MARGIN
        lines = running.records()
        log = read_run_log(store)
    errors = running.errors()
    dead = identities[victim]
    others = set(MEMBERS) - {dead}

    # What the victim had handed to its executor and not finished: in progress at the kill.
    finished = {(r.task_id, r.slot) for r in lines if r.pid == victim and r.code == "EXE"}
    abandoned = {
        (r.task_id, r.slot)
        for r in lines
        if r.pid == victim and r.code == "SUB" and (r.task_id, r.slot) not in finished
    }
    survivors = [r for r in lines if r.pid != victim and (r.task_id, r.slot) in abandoned]
    takeover = min((r.wall for r in survivors), default=math.inf) - killed_at
    print(
        Summary(
            backend,
            log,
            f"{dead} SIGKILLed mid-run, its {len(abandoned)} runs taken over "
            f"{takeover:.2f} s after the kill (lease {LEASE} s)",
        )
    )
    assert {task_id for task_id, _ in abandoned} == set(task_ids), abandoned
    # (The abandoned slots are checked below: a strict one's record is not a success.)
    by_run = check_records(log, lines, identities, (first, last), errors)

    # Taken over once, by a survivor, when the victim's lease ran out (plus up to the
    # second between two looks for abandoned runs).
    assert LEASE - 1.0 < takeover < LEASE + 1.5, takeover
    assert all(r.wall < killed_at for r in lines if r.pid == victim)
    (patient_slot,) = [slot for task_id, slot in abandoned if task_id == patient.id]
    first_try = by_run[(patient.id, patient_slot, 1)]
    assert first_try.outcome == "error", first_try
    assert first_try.error == ABANDONED + dead, first_try
    assert first_try.scheduler in others, first_try
    second_try = by_run[(patient.id, patient_slot, 2)]
    assert second_try.outcome == "success", second_try
    assert second_try.scheduler in others, second_try

    (strict_slot,) = [slot for task_id, slot in abandoned if task_id == strict.id]
    reported = {(r.task_id, r.slot) for r in lines if r.code == "MIS" and r.pid != victim}
    assert (strict.id, strict_slot) in reported  # TASK_MISSED, by a survivor
    # Too late to run again: its second attempt is on record as missed.
    assert by_run[(strict.id, strict_slot, 2)].outcome == "missed"
    strict_record = by_run[(strict.id, strict_slot, 1)]
    assert strict_record.outcome == "error", strict_record
    assert strict_record.error == ABANDONED + dead, strict_record
    assert strict_record.scheduler in others, strict_record
    abandoned_records = [r for r in log if (r.error or "").startswith(ABANDONED)]
    assert len(abandoned_records) == len(abandoned), abandoned_records


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(60)
def test_a_member_killed_just_after_a_run_keeps_its_success(backend: str, tmp_path: Path) -> None:
    # The other end of a run: it has ended and its member has deleted its lease record,
    # so no survivor will ever take it over. Its final record must be in the run log by
    # then; the kill comes at the first moment the store shows no run in progress.
    task = slow_task("patient", mistrigger_grace_time=None)
    with shared_store(backend) as (kind, location, store):
        add_tasks(store, [task])
        probe = make_store(kind, location, LEASE)
        probe.start("probe")
        try:
            with fleet(tmp_path, kind, location) as running:
                identities = start_members(running, MEMBERS)
                first = time.time() + MARGIN
                time.sleep(BEFORE_KILL / 2)
                run, killed_at, before = kill_after_run(running, probe, task.id)
                # Ample time for a take-over, were there one to do.
                time.sleep(LEASE + 2.0)
                last = time.time() - MARGIN
        finally:
            probe.shutdown()
        lines = running.records()
        log = read_run_log(store)
    errors = running.errors()
    dead = identities[run.pid]
    print(
        Summary(
            backend,
            log,
            f"{dead} SIGKILLed {killed_at - run.wall:.3f} s after its run ended and let go "
            f"of the run's lease; the run's record was {before!r} then",
        )
    )
    slot = (task.id, run.slot)
    by_run = check_records(log, lines, identities, (first, last), errors, frozenset({slot}))
    # The lease was let go: nobody takes the run over, nobody runs it again.
    assert (task.id, run.slot, 2) not in by_run, by_run[(task.id, run.slot, 2)]
    record = by_run[(task.id, run.slot, 1)]
    assert record.outcome == "success", record
    assert record.scheduler == dead, record
