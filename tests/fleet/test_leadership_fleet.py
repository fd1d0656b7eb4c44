"""Leader election with three real processes on PostgreSQL and on Redis, the leader
SIGKILLed twice: a new leader within the stated bound, never two leaders at once, and
the leader-only task run by the leader only, each slot at most once.

Each worker (``leader_worker.py``) writes when its ``is_leader`` turned true and false
(polled every 2 ms), the terms it was told of, and its runs of the leader-only task.
Run with ``-s`` to see the hand-over times.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import servers
from fleet_support import HERE, Fleet

pytestmark = pytest.mark.slow

#: The stores' lease_time in these tests (seconds): the hand-over bound is 4/3 of it.
LEASE = 1.5
#: What the docs promise after a leader dies: 4/3 of the lease (its last renewal was at
#: most a third of a lease before it died), plus a round trip and process scheduling.
BOUND = LEASE * 4 / 3
SLACK = 0.5


@dataclass
class Member:
    """What one worker wrote."""

    pid: int
    spans: list[tuple[float, float]] = field(default_factory=list)
    terms: list[tuple[int, bool, float]] = field(default_factory=list)
    runs: list[tuple[float, float]] = field(default_factory=list)


@contextlib.contextmanager
def shared_store(backend: str) -> Iterator[tuple[str, str]]:
    if backend == "postgresql":
        with servers.temporary_database("postgresql") as url:
            yield "sql", url
    else:
        with servers.redis_prefix() as prefix:
            yield "redis", f"{servers.redis_url()}#{prefix}"


def journal(fleet: Fleet, pid: int) -> list[str]:
    """The lines worker ``pid`` wrote so far (its output file is its first argument)."""
    path = Path(fleet.processes[pid].args[2])  # type: ignore[index]
    return path.read_text().splitlines() if path.exists() else []


def read_members(fleet: Fleet, pids: list[int]) -> dict[int, Member]:
    members: dict[int, Member] = {}
    for pid in pids:
        member = members[pid] = Member(pid)
        started: float | None = None
        for line in journal(fleet, pid):
            code, *values = line.split()
            if code == "LEAD":
                started = float(values[0])
            elif code == "DROP":
                assert started is not None
                member.spans.append((started, float(values[0])))
                started = None
            elif code == "TERM":
                member.terms.append((int(values[0]), values[1] == "1", float(values[2])))
            elif code == "RUN":
                member.runs.append((float(values[0]), float(values[1])))
        if started is not None:  # killed while leading: it acted no more after the kill
            member.spans.append((started, fleet.killed[pid]))
    return members


def current_leader(fleet: Fleet, pids: list[int], timeout: float) -> tuple[int, float]:
    """The pid whose file says it leads now, and since when (waits for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            if pid in fleet.killed:
                continue
            marks = [line.split() for line in journal(fleet, pid) if line[:4] in ("LEAD", "DROP")]
            if marks and marks[-1][0] == "LEAD":
                return pid, float(marks[-1][1])
        time.sleep(0.005)
    raise AssertionError(f"no leader within {timeout} s:\n{fleet.errors()}")


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
        pytest.param("redis", marks=pytest.mark.external_service("redis")),
    ],
)
def test_three_members_one_leader_through_two_kills(backend: str, tmp_path: Path) -> None:
    with shared_store(backend) as (kind, location):
        fleet = Fleet(tmp_path, kind, location, ["--lease", str(LEASE)])
        fleet.worker = HERE / "leader_worker.py"
        try:
            pids = fleet.start(3)
            leader, _ = current_leader(fleet, pids, timeout=10)
            handovers = []
            for _ in range(2):
                time.sleep(1.5)  # the leader runs its task for a while
                killed_at = fleet.kill(leader)
                leader, since = current_leader(fleet, pids, timeout=BOUND + 5)
                handovers.append(since - killed_at)
            time.sleep(1.0)
        finally:
            fleet.stop()
    members = read_members(fleet, pids)
    print(f"\n{backend}: hand-over after SIGKILL {[f'{h:.2f} s' for h in handovers]}")
    assert all(0 < h <= BOUND + SLACK for h in handovers), (handovers, fleet.errors())

    # Never two leaders at once: the spans of all members, in order, do not overlap.
    spans = sorted(span for member in members.values() for span in member.spans)
    assert len(spans) >= 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two leaders at once: {spans}"

    # Terms: each member was told of its own, generations grow with time.
    gained = sorted(
        (wall, generation) for m in members.values() for generation, up, wall in m.terms if up
    )
    assert [generation for _, generation in gained] == sorted({g for _, g in gained})
    assert len(gained) == 3

    # The leader-only task ran on leaders only, while they led, each slot once.
    slots = [slot for member in members.values() for slot, _ in member.runs]
    assert len(slots) == len(set(slots)), "a slot ran twice"
    for member in members.values():
        for _, wall in member.runs:
            assert any(start - 0.05 <= wall <= end + 0.5 for start, end in member.spans), (
                f"process {member.pid} ran the task at {wall} outside its terms {member.spans}"
            )
    assert sum(1 for member in members.values() if member.runs) == 3


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgresql", marks=pytest.mark.external_service("postgresql")),
        pytest.param("redis", marks=pytest.mark.external_service("redis")),
    ],
)
def test_a_killed_leaders_run_is_taken_over_by_the_new_leader_only(
    backend: str, tmp_path: Path
) -> None:
    """The leader is SIGKILLed in the middle of a leader-only run: the run is taken over
    and run again exactly once, by the member that leads next (the other member, which
    looks for abandoned runs every second too, leaves it alone), and never two leaders."""
    notes = tmp_path / "attempts.txt"
    at = time.time() + 6  # after the workers started and elected
    with shared_store(backend) as (kind, location):
        fleet = Fleet(tmp_path, kind, location, ["--lease", str(LEASE)])
        fleet.worker = HERE / "leader_worker.py"
        try:
            pids = fleet.start(3, "--abandon", str(notes), repr(at))
            deadline = time.monotonic() + 20
            while not (notes.exists() and notes.read_text().strip()):
                assert time.monotonic() < deadline, fleet.errors()
                time.sleep(0.01)
            first = int(notes.read_text().split()[1])
            killed_at = fleet.kill(first)
            leader, since = current_leader(fleet, pids, timeout=BOUND + 5)
            deadline = time.monotonic() + 20
            while "ok" not in notes.read_text():
                assert time.monotonic() < deadline, (notes.read_text(), fleet.errors())
                time.sleep(0.05)
            time.sleep(2.5)  # time for a wrong second take-over to show
        finally:
            fleet.stop()
    members = read_members(fleet, pids)
    print(f"\n{backend}: hand-over after SIGKILL mid-run {since - killed_at:.2f} s")
    attempts = [line.split() for line in notes.read_text().splitlines()]
    assert attempts == [["start", str(first)], ["start", str(leader)], ["ok", str(leader)]], (
        attempts
    )
    spans = sorted(span for member in members.values() for span in member.spans)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two leaders at once: {spans}"
