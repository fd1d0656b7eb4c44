"""The election part of the store contract (``supports_election``: SQL, Redis): terms,
generations, resigning, and leader-only tasks handed to the running term only.

Stores that cannot elect (memory, file) keep every task claimable by anyone and raise
``NotImplementedError`` from ``elect``: checked here too.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from storetest_funcs import NOW, at, make_task
from storetest_support import StoreMaker

from tickwork.stores import BaseStore
from tickwork.stores.base import PendingRetry
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task

LEASE = timedelta(seconds=30)


def ids(tasks: list[Task]) -> list[str]:
    return sorted(task.id for task in tasks)


def electing(make_store: StoreMaker) -> BaseStore:
    store = make_store()
    if not store.supports_election:
        pytest.skip(f"{make_store.kind} cannot elect")
    return store


def test_stores_that_share_elect(store: BaseStore) -> None:
    assert store.supports_election == isinstance(store, SQLAlchemyStore | RedisStore)
    if not store.supports_election:
        with pytest.raises(NotImplementedError, match="cannot elect"):
            store.elect("me", 10)


def test_one_owner_leads_and_renews_its_term(make_store: StoreMaker) -> None:
    one, two = electing(make_store), make_store()
    assert one.elect("one", 30) == 1
    assert two.elect("two", 30) is None  # one's term runs
    assert one.elect("one", 30) == 1  # renewed: the same generation
    assert two.elect("two", 30) is None


def test_an_expired_term_goes_to_the_next_generation(make_store: StoreMaker) -> None:
    one, two = electing(make_store), make_store()
    assert one.elect("one", 0.3) == 1
    time.sleep(0.5)
    assert two.elect("two", 30) == 2
    assert one.elect("one", 30) is None
    # Even its own expired term is never renewed: taking it again is a new generation.
    two.resign("two")
    assert one.elect("one", 0.3) == 3
    time.sleep(0.5)
    assert one.elect("one", 30) == 4


def test_resigning_frees_the_term_at_once(make_store: StoreMaker) -> None:
    one, two = electing(make_store), make_store()
    assert one.elect("one", 30) == 1
    two.resign("two")  # not two's: nothing happens
    assert two.elect("two", 30) is None
    one.resign("one")
    assert two.elect("two", 30) == 2


def test_a_new_store_object_sees_the_same_term(make_store: StoreMaker) -> None:
    one = electing(make_store)
    assert one.elect("one", 30) == 1
    assert make_store().elect("other", 30) is None


def test_the_running_term_can_be_read_by_anyone(make_store: StoreMaker) -> None:
    """``get_leader`` (for operators) names whoever holds the running term, read from
    the store by any instance; none before, after resigning and after expiry."""
    store = make_store()
    if not store.supports_election:
        assert store.get_leader() is None  # no terms at all
        return
    observer = make_store()
    assert observer.get_leader() is None
    assert store.elect("one", 30) == 1
    term = observer.get_leader()
    assert term is not None
    assert (term.owner, term.generation) == ("one", 1)
    assert 25 < term.expires_in <= 30
    store.resign("one")
    assert observer.get_leader() is None
    assert make_store().elect("two", 0.3) == 2
    found = observer.get_leader()
    assert found is not None
    assert (found.owner, found.generation) == ("two", 2)
    time.sleep(0.5)
    assert observer.get_leader() is None  # expired by the store's clock


def test_leader_only_tasks_are_claimed_by_the_leader_only(make_store: StoreMaker) -> None:
    leader, member = electing(make_store), make_store()
    leader.add_task(make_task("plain", at(-2)))
    leader.add_task(make_task("lead", at(-1), leader_only=True))
    assert leader.elect("leader", 30) == 1
    assert member.elect("member", 30) is None
    assert ids(member.acquire_due_tasks(NOW, 10, "member", LEASE)) == ["plain"]
    assert ids(leader.acquire_due_tasks(NOW, 10, "leader", LEASE)) == ["lead"]
    # Reads ignore leadership: the task is there for everyone to see.
    assert ids(member.get_due_tasks(NOW)) == ["lead", "plain"]
    assert member.lookup_task("lead").leader_only  # type: ignore[union-attr]


def test_without_a_term_nobody_claims_leader_only_tasks(make_store: StoreMaker) -> None:
    store = electing(make_store)
    store.add_task(make_task("lead", at(-1), leader_only=True))
    assert store.acquire_due_tasks(NOW, 10, "anyone", LEASE) == []
    assert store.get_next_run_time() is None


def test_the_next_run_time_counts_leader_only_tasks_for_the_leader(
    make_store: StoreMaker,
) -> None:
    leader, member = electing(make_store), make_store()
    leader.add_task(make_task("lead", at(1), leader_only=True))
    leader.add_task(make_task("plain", at(5)))
    leader.elect("leader", 30)
    member.elect("member", 30)
    assert leader.get_next_run_time() == at(1)
    # A member would otherwise wake for a task it may not claim, again and again.
    assert member.get_next_run_time() == at(5)


def test_an_expired_term_claims_nothing_however_late_it_asks(make_store: StoreMaker) -> None:
    """The fence: the store checks the term in the claim itself, not the caller."""
    old, new = electing(make_store), make_store()
    old.add_task(make_task("lead", at(-1), leader_only=True))
    assert old.elect("old", 0.3) == 1
    time.sleep(0.5)
    # ``old`` still believes it holds generation 1 (it has not asked since).
    assert old.acquire_due_tasks(NOW, 10, "old", LEASE) == []
    assert old.get_next_run_time() is None
    assert new.elect("new", 30) == 2
    assert ids(new.acquire_due_tasks(NOW, 10, "new", LEASE)) == ["lead"]


def test_the_term_is_checked_for_the_claiming_owner(make_store: StoreMaker) -> None:
    store = electing(make_store)
    store.add_task(make_task("lead", at(-1), leader_only=True))
    store.elect("leader", 30)
    assert store.acquire_due_tasks(NOW, 10, "someone else", LEASE) == []
    assert ids(store.acquire_due_tasks(NOW, 10, "leader", LEASE)) == ["lead"]


def test_leader_only_follows_updates_and_write_backs(make_store: StoreMaker) -> None:
    leader, member = electing(make_store), make_store()
    leader.add_task(make_task("t", at(-1)))
    leader.elect("leader", 30)
    member.update_task(make_task("t", at(-1), leader_only=True))
    assert member.acquire_due_tasks(NOW, 10, "member", LEASE) == []
    (claimed,) = leader.acquire_due_tasks(NOW, 10, "leader", LEASE)
    claimed.next_run_time = at(-0.5)
    leader.release_tasks("leader", [claimed], [])
    assert member.acquire_due_tasks(NOW, 10, "member", LEASE) == []  # still leader-only
    member.update_task(make_task("t", at(-1), leader_only=False))
    assert ids(member.acquire_due_tasks(NOW, 10, "member", LEASE)) == ["t"]


def test_removed_and_cleared_tasks_leave_no_mark(make_store: StoreMaker) -> None:
    store = electing(make_store)
    store.add_task(make_task("t", at(-1), leader_only=True))
    store.remove_task("t")
    store.add_task(make_task("t", at(-1)))  # the same id, now an ordinary task
    assert ids(store.acquire_due_tasks(NOW, 10, "anyone", LEASE)) == ["t"]
    store.add_task(make_task("u", at(-1), leader_only=True))
    store.remove_all_tasks()
    store.add_task(make_task("u", at(-1)))
    assert ids(store.acquire_due_tasks(NOW, 10, "other", LEASE)) == ["u"]


def test_a_renewal_renews_only_the_term_this_instance_holds(make_store: StoreMaker) -> None:
    """Another store instance under the same owner name (a second scheduler given the
    same ``identity``, a restarted process) does not take over the running term."""
    first, second = electing(make_store), make_store()
    assert first.elect("same", 30) == 1
    assert second.elect("same", 30) is None
    assert first.elect("same", 30) == 1
    first.resign("same")
    assert second.elect("same", 30) == 2
    assert first.elect("same", 30) is None  # its term ended; the new one is not its own


def _abandon(make_store: StoreMaker, *tasks: Task) -> BaseStore:
    """Runs of ``tasks`` recorded by "dead", a leader whose term (0.3 s) is over and
    whose records' lease ran out at NOW + LEASE; returns its store."""
    dead = electing(make_store)
    for task in tasks:
        dead.add_task(task)
    assert dead.elect("dead", 0.3) == 1
    claimed = dead.acquire_due_tasks(NOW, 10, "dead", LEASE)
    assert len(claimed) == len(tasks)
    ran = [(make_task(task.id, leader_only=task.leader_only), at(-1)) for task in tasks]
    later = [make_task(task.id, at(60), leader_only=task.leader_only) for task in tasks]
    dead.release_tasks("dead", later, [], ran, NOW + LEASE)
    time.sleep(0.5)
    return dead


def _retry(store: BaseStore, task_id: str) -> None:
    """A pending retry of ``task_id``'s run at -1, due at NOW + LEASE."""
    store.retry_runs("dead", [PendingRetry(make_task(task_id), at(-1), 2, NOW + LEASE)])


LATER = NOW + LEASE + timedelta(seconds=1)


def test_abandoned_runs_of_leader_only_tasks_go_to_the_leader_only(
    make_store: StoreMaker,
) -> None:
    _abandon(make_store, make_task("lead", at(-1), leader_only=True), make_task("plain", at(-1)))
    leader, member = make_store(), make_store()
    assert leader.elect("leader", 30) == 2
    assert member.elect("member", 30) is None
    taken = member.take_over_runs(LATER, 10, "member", at(100))
    assert [run.task.id for run in taken] == ["plain"]
    # Not even the leader's store instance takes it over under another owner's name.
    assert leader.take_over_runs(LATER, 10, "member", at(100)) == []
    taken = leader.take_over_runs(LATER, 10, "leader", at(100))
    assert [(run.task.id, run.owner) for run in taken] == [("lead", "dead")]


def test_pending_retries_of_leader_only_tasks_go_to_the_leader_only(
    make_store: StoreMaker,
) -> None:
    leader, member = electing(make_store), make_store()
    leader.add_task(make_task("lead", at(60), leader_only=True))
    leader.add_task(make_task("plain", at(60)))
    _retry(leader, "lead")
    _retry(leader, "plain")
    leader.elect("leader", 30)
    assert [run.task.id for run in member.take_over_runs(LATER, 10, "member", at(100))] == ["plain"]
    assert [run.task.id for run in leader.take_over_runs(LATER, 10, "leader", at(100))] == ["lead"]


def test_an_expired_term_takes_over_nothing_leader_only(make_store: StoreMaker) -> None:
    """The take-over is fenced like a claim: by the store, in the same statement."""
    old = _abandon(make_store, make_task("lead", at(-1), leader_only=True))
    new = make_store()
    # ``old`` still believes it holds generation 1 (it has not asked since).
    assert old.take_over_runs(LATER, 10, "dead", at(100)) == []
    assert new.elect("new", 30) == 2
    assert [run.task.id for run in new.take_over_runs(LATER, 10, "new", at(100))] == ["lead"]
