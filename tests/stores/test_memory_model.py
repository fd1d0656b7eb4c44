"""MemoryStore against a reference model: random sequences of writes, claims and reads
on two stores, checked against a plain dict after every step.

The store files ids in buckets by timestamp with lazy deletion, claims and sweeps; the
model keeps ``id -> (run time, version)`` and answers every question by sorting. Two
stores share task objects (``_own``), and the run times are instants around a DST fall
back rendered in several zones, so ordering by wall time or by object would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from storetest_funcs import make_task

from tickwork.exceptions import ConflictIdError, TaskLookupError
from tickwork.stores import memory
from tickwork.stores.memory import MemoryStore
from tickwork.tasks import Task

LEASE = timedelta(seconds=30)
IDS = ["a", "b", "c", "d", "e"]
ZONES = [
    UTC,
    ZoneInfo("America/New_York"),
    ZoneInfo("Europe/Paris"),
    timezone(timedelta(hours=-5, minutes=-30)),
]
# New York repeats 01:00-02:00 on 2026-11-01 (05:00-07:00 UTC): astimezone() gives the
# second pass fold=1, and its wall times sort before instants of the first pass.
INSTANTS = [datetime(2026, 11, 1, 5, 0, tzinfo=UTC) + timedelta(minutes=20 * k) for k in range(7)]
WHEN = st.builds(
    lambda at, zone: at.astimezone(zone), st.sampled_from(INSTANTS), st.sampled_from(ZONES)
)
RUN_TIME = st.one_of(st.none(), WHEN)
LIMIT = st.one_of(st.none(), st.integers(0, 6))


def version(task: Task) -> int:
    """The write a task object carries (its only argument)."""
    return int(task.args[0])


def instant(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


@dataclass
class Model:
    """What one store should hold: ``id -> (next run time, version)``; the ids taken
    by an acquire and not yet settled (hidden from ``get_due_tasks``); and the objects
    that acquire handed out, for the pass's release."""

    tasks: dict[str, tuple[datetime | None, int]] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)
    handed_out: list[Task] = field(default_factory=list)

    def due(self, now: datetime) -> list[tuple[float, str]]:
        """(timestamp, id) of every due, unclaimed task, earliest first."""
        now_ts = now.timestamp()
        return sorted(
            (when.timestamp(), task_id)
            for task_id, (when, _) in self.tasks.items()
            if when is not None and when.timestamp() <= now_ts and task_id not in self.claimed
        )


class MemoryStoreMachine(RuleBasedStateMachine):
    """Drives two MemoryStores and their models with the same operations."""

    def __init__(self) -> None:
        super().__init__()
        self.stores = [MemoryStore(), MemoryStore()]
        for index, store in enumerate(self.stores):
            store.start(f"s{index}")
        self.models = [Model(), Model()]
        self.versions = 0

    def fresh(self, task_id: str, when: datetime | None) -> Task:
        self.versions += 1
        return make_task(task_id, when, args=(self.versions,))

    def pick_object(self, s: int, task_id: str, when: datetime | None, source: str) -> Task:
        """The object to write: a new one, the stored one changed in place (as the
        scheduler's ``update_task`` does), or the very object the other store holds."""
        if source == "inplace":
            stored = self.stores[s].lookup_task(task_id)
            if stored is not None:
                self.versions += 1
                stored.next_run_time = when
                stored.args = (self.versions,)
                return stored
        elif source == "other":
            held = self.stores[1 - s].lookup_task(task_id)
            if held is not None:
                return held
        return self.fresh(task_id, when)

    # -- writes -------------------------------------------------------------------------

    @rule(
        s=st.integers(0, 1),
        task_id=st.sampled_from(IDS),
        when=RUN_TIME,
        source=st.sampled_from(["fresh", "other"]),
    )
    def add(self, s: int, task_id: str, when: datetime | None, source: str) -> None:
        store, model = self.stores[s], self.models[s]
        task = self.pick_object(s, task_id, when, source)
        if task_id in model.tasks:
            with pytest.raises(ConflictIdError):
                store.add_task(task)
            return
        store.add_task(task)
        model.tasks[task_id] = (task.next_run_time, version(task))
        model.claimed.discard(task_id)

    @rule(
        s=st.integers(0, 1),
        task_id=st.sampled_from(IDS),
        when=RUN_TIME,
        source=st.sampled_from(["fresh", "inplace", "other"]),
    )
    def update(self, s: int, task_id: str, when: datetime | None, source: str) -> None:
        store, model = self.stores[s], self.models[s]
        if task_id not in model.tasks:
            with pytest.raises(TaskLookupError):
                store.update_task(self.fresh(task_id, when))
            return
        task = self.pick_object(s, task_id, when, source)
        store.update_task(task)
        model.tasks[task_id] = (task.next_run_time, version(task))
        model.claimed.discard(task_id)  # a write settles the claim: the write wins

    @rule(s=st.integers(0, 1), task_id=st.sampled_from(IDS))
    def remove(self, s: int, task_id: str) -> None:
        store, model = self.stores[s], self.models[s]
        if task_id not in model.tasks:
            with pytest.raises(TaskLookupError):
                store.remove_task(task_id)
            return
        store.remove_task(task_id)
        del model.tasks[task_id]
        model.claimed.discard(task_id)

    @rule(s=st.integers(0, 1))
    def remove_all(self, s: int) -> None:
        self.stores[s].remove_all_tasks()
        self.models[s] = Model(handed_out=self.models[s].handed_out)

    # -- the processing pass ------------------------------------------------------------

    @rule(s=st.integers(0, 1), now=WHEN, limit=st.integers(0, 6))
    def acquire(self, s: int, now: datetime, limit: int) -> None:
        store, model = self.stores[s], self.models[s]
        model.claimed.clear()  # an acquire puts back what a failed pass left claimed
        expected = None
        if not store._claimed:
            # Nothing to put back: acquiring takes exactly what get_due_tasks shows.
            expected = [t.id for t in store.get_due_tasks(now, limit)]
        got = store.acquire_due_tasks(now, limit, "me", LEASE)
        self.check_due(s, now, limit, got)
        if expected is not None:
            assert [t.id for t in got] == expected
        model.claimed = {t.id for t in got}
        model.handed_out = got

    @rule(
        s=st.integers(0, 1),
        data=st.data(),
        ghosts=st.lists(
            st.tuples(st.sampled_from(IDS), RUN_TIME, st.sampled_from(["fresh", "other"])),
            max_size=2,
        ),
        ghost_removals=st.lists(st.sampled_from(IDS), max_size=2),
    )
    def release(
        self,
        s: int,
        data: st.DataObject,
        ghosts: list[tuple[str, datetime | None, str]],
        ghost_removals: list[str],
    ) -> None:
        """The pass's write back: each handed-out task advanced (in place, as the pass
        does), finished, or not mentioned; plus tasks and ids it never acquired."""
        store, model = self.stores[s], self.models[s]
        updated: list[Task] = []
        removed: list[str] = []
        for task in model.handed_out:
            fate = data.draw(st.sampled_from(["advance", "finish", "skip"]))
            if fate == "advance":
                self.versions += 1
                task.next_run_time = data.draw(RUN_TIME)
                task.args = (self.versions,)
                updated.append(task)
            elif fate == "finish":
                removed.append(task.id)
        updated += [self.pick_object(s, *ghost) for ghost in ghosts]
        removed += ghost_removals
        assert store.release_tasks("me", updated, removed) == ()
        for task in updated:
            if task.id in model.tasks:
                model.tasks[task.id] = (task.next_run_time, version(task))
        for task_id in removed:
            model.tasks.pop(task_id, None)
        model.claimed.clear()
        model.handed_out = []

    @rule(s=st.integers(0, 1), data=st.data())
    def pass_dies(self, s: int, data: st.DataObject) -> None:
        """The pass advanced some tasks in place, started their runs and then failed
        before releasing: the claims stay until the next acquire. (It holds the store
        lock, so no write comes between its acquire and its changes: only tasks still
        claimed change.)"""
        store, model = self.stores[s], self.models[s]
        for task in model.handed_out:
            if task.id in model.claimed and data.draw(st.booleans()):
                self.versions += 1
                task.next_run_time = data.draw(RUN_TIME)
                task.args = (self.versions,)
                if store.lookup_task(task.id) is task:
                    model.tasks[task.id] = (task.next_run_time, version(task))
        model.handed_out = []

    # -- reads ----------------------------------------------------------------------------

    @rule(s=st.integers(0, 1), now=WHEN, limit=LIMIT)
    def get_due(self, s: int, now: datetime, limit: int | None) -> None:
        got = self.stores[s].get_due_tasks(now, limit)
        self.check_due(s, now, limit, got)
        if limit is not None:
            assert got == self.stores[s].get_due_tasks(now)[: max(limit, 0)]

    def check_due(self, s: int, now: datetime, limit: int | None, got: list[Task]) -> None:
        """``got`` is a correct answer to "what is due at ``now``, at most ``limit``?":
        the right number of distinct due tasks, earliest first, none skipped for a later
        one (tasks due at the same instant may come in any order)."""
        due = self.models[s].due(now)
        want = len(due) if limit is None else max(0, min(limit, len(due)))
        ids = [t.id for t in got]
        assert len(ids) == want, (ids, due)
        assert len(set(ids)) == len(ids), ids
        stamps = dict((task_id, ts) for ts, task_id in due)
        assert all(task_id in stamps for task_id in ids), (ids, due)
        times = [stamps[task_id] for task_id in ids]
        assert times == sorted(times), ids
        if times:
            assert {i for ts, i in due if ts < times[-1]} <= set(ids), (ids, due)
        for task in got:
            self.check_object(s, task)

    def check_object(self, s: int, task: Task) -> None:
        when, ver = self.models[s].tasks[task.id]
        assert (instant(task.next_run_time), version(task)) == (instant(when), ver), task.id
        assert task.store_alias == f"s{s}"

    @invariant()
    def agrees_with_the_model(self) -> None:
        for s, (store, model) in enumerate(zip(self.stores, self.models, strict=True)):
            assert len(store) == len(model.tasks)
            for task_id in IDS:
                found = store.lookup_task(task_id)
                assert (found is None) == (task_id not in model.tasks), task_id
                if found is not None:
                    self.check_object(s, found)
            listed = store.get_all_tasks()
            assert sorted(t.id for t in listed) == sorted(model.tasks)
            keys = [
                (1, 0.0) if t.next_run_time is None else (0, t.next_run_time.timestamp())
                for t in listed
            ]
            assert keys == sorted(keys)
            times = [when.timestamp() for when, _ in model.tasks.values() if when is not None]
            assert instant(store.get_next_run_time()) == (min(times) if times else None)
            later = INSTANTS[-1] + timedelta(days=1)
            self.check_due(s, later, None, store.get_due_tasks(later))
        # One object is never held by both stores: its filing slot can only serve one.
        for task_id in IDS:
            first, second = (store.lookup_task(task_id) for store in self.stores)
            assert first is None or first is not second, task_id

    @invariant()
    def index_is_consistent(self) -> None:
        for store in self.stores:
            assert sorted(store._heap) == sorted(store._buckets)
            assert len(set(store._heap)) == len(store._heap)
            assert store._filed == sum(
                1 if isinstance(ids, str) else len(ids) for ids in store._buckets.values()
            )


MemoryStoreMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def eager_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweep as soon as stale ids outnumber live ones, so short runs exercise it."""
    monkeypatch.setattr(memory, "_SWEEP_SLACK", 0)


TestMemoryStoreModel = MemoryStoreMachine.TestCase
