"""A change made to a task while another scheduler holds its claim survives that
scheduler's write-back (``release_tasks``), on every persistent store (file, SQL, Redis).

The change wins; when it left the next run time as claimed, the write-back's advance still
applies, so the run time the pass handled does not run a second time. Before this was
kept, a pause made while the task was claimed was overwritten: the task ran on.
"""

from __future__ import annotations

from datetime import timedelta

from storetest_funcs import at, make_task
from storetest_support import StoreMaker

LEASE = timedelta(seconds=30)


def test_a_pause_made_while_claimed_survives_the_write_back(
    make_persistent_store: StoreMaker,
) -> None:
    claimant, other = make_persistent_store(), make_persistent_store()
    claimant.add_task(make_task("a", at(1), tags={"x"}))
    (claimed,) = claimant.acquire_due_tasks(at(10), 10, "member-1", LEASE)

    assert [task.id for task in other.pause_tasks_by_tag("x")] == ["a"]
    claimed.next_run_time = at(20)
    claimant.release_tasks("member-1", [claimed], [])

    assert other.lookup_task("a").next_run_time is None, "the pause was overwritten"


def test_a_change_made_while_claimed_survives_and_the_slot_advances(
    make_persistent_store: StoreMaker,
) -> None:
    claimant, other = make_persistent_store(), make_persistent_store()
    claimant.add_task(make_task("a", at(1)))
    (claimed,) = claimant.acquire_due_tasks(at(10), 10, "member-1", LEASE)

    changed = other.lookup_task("a")
    changed.kwargs = {"changed": True}
    other.update_task(changed)
    claimed.next_run_time = at(20)
    claimant.release_tasks("member-1", [claimed], [])

    stored = other.lookup_task("a")
    assert stored.kwargs == {"changed": True}, "the change was overwritten"
    assert stored.next_run_time == at(20), "the slot that ran must not run again"


def test_a_reschedule_made_while_claimed_is_kept(make_persistent_store: StoreMaker) -> None:
    claimant, other = make_persistent_store(), make_persistent_store()
    claimant.add_task(make_task("a", at(1)))
    (claimed,) = claimant.acquire_due_tasks(at(10), 10, "member-1", LEASE)

    moved = other.lookup_task("a")
    moved.next_run_time = at(500)
    other.update_task(moved)
    claimed.next_run_time = at(20)
    claimant.release_tasks("member-1", [claimed], [])

    assert other.lookup_task("a").next_run_time == at(500)
    # The claim ended with the write-back: another scheduler can take the task when due.
    assert [t.id for t in other.acquire_due_tasks(at(600), 10, "member-2", LEASE)] == ["a"]


def test_a_finished_task_goes_unless_the_change_rescheduled_it(
    make_persistent_store: StoreMaker,
) -> None:
    claimant, other = make_persistent_store(), make_persistent_store()
    claimant.add_task(make_task("done", at(1)))
    claimant.add_task(make_task("again", at(1)))
    claimed = claimant.acquire_due_tasks(at(10), 10, "member-1", LEASE)
    assert sorted(t.id for t in claimed) == ["again", "done"]

    changed = other.lookup_task("done")
    changed.kwargs = {"changed": True}
    other.update_task(changed)
    rescheduled = other.lookup_task("again")
    rescheduled.next_run_time = at(900)
    other.update_task(rescheduled)
    # The pass found both triggers finished: it removes them.
    claimant.release_tasks("member-1", [], ["done", "again"])

    assert other.lookup_task("done") is None, "a change of arguments does not revive it"
    assert other.lookup_task("again").next_run_time == at(900), "a new run time does"


def test_an_unchanged_task_is_written_back_as_advanced(make_persistent_store: StoreMaker) -> None:
    claimant, other = make_persistent_store(), make_persistent_store()
    claimant.add_task(make_task("a", at(1)))
    (claimed,) = claimant.acquire_due_tasks(at(10), 10, "member-1", LEASE)
    claimed.next_run_time = at(20)
    claimant.release_tasks("member-1", [claimed], [])
    assert other.lookup_task("a").next_run_time == at(20)
