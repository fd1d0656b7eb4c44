"""Leadership: which scheduler of a fleet leads, so that leader-only tasks run there only.

A task with ``leader_only=True`` runs only on the *leader* of the schedulers sharing its
store. Each store that can elect one has an :class:`Election`:

* a shared store (SQL, Redis; ``supports_election``) elects through a record in the
  store: a *term* with an owner, an expiry by the store's own clock and a *generation*
  that grows with every new term (see :meth:`BaseStore.elect`). Every member asks every
  third of the store's ``lease_time``: the leader renews its term, the others take it
  once it has expired. The store hands leader-only tasks only to the holder of the
  running term, checking owner, generation and expiry in the same statement as the
  claim: the generation is a fencing token, so a leader that lost its term (paused,
  cut off from the store) claims nothing, however late it asks;
* a memory or file store under ``lock_path`` is processed by the process holding its
  lock only, so that process is its leader: the lock is the term (the kernel releases
  it when the holder dies), numbered by a counter in ``<lock file>.generation``.

**No two leaders at once.** A leader counts its term from the moment *before* it asked
the store (``asked``): the store set the expiry after that moment, by its own clock, to
``lease`` seconds later. So the leader stops acting as leader (``is_leader`` turns
false, ``LEADERSHIP_CHANGED`` is sent) at ``asked + lease - margin``, before the store
lets anyone else take the term: only the clocks' *rates* must agree (within the
margin, a tenth of the lease), not their readings. Renewals every third of the lease
keep a live leader's term going; one that cannot renew loses it at that deadline.

**Hand-over.** A leader that dies (SIGKILL) last renewed at most ``lease/3`` before
dying; its term expires ``lease`` after that renewal, and the next member to ask (each
asks every ``lease/3``) takes it: the new leader is elected at most ``4/3 x lease``
after the death (13.3 s with the default ``lease_time`` of 10 s; measured in
``tests/fleet/test_leadership_fleet.py``). A leader that shuts down resigns its term,
and the next member to ask takes over within ``lease/3``. Under ``lock_path`` a standby
takes a dead holder's lock within ``lock_retry_interval`` (1 s).

**Late answers.** A renewal whose answer comes back after ``asked + lease - margin``
(a paused process, a slow store) may have renewed a term the store already let lapse
(then it is a new generation) or kept one the member can no longer count on: either
way the member resigns the term and says so (``LEADERSHIP_CHANGED``, a warning), and
stands again at its next attempt.

A run of a leader-only task that started before its leader lost the term goes on (a
thread cannot be stopped); only new runs follow the new leader.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tickwork.events import LEADERSHIP_CHANGED, LeadershipEvent
from tickwork.exceptions import NoElectionError
from tickwork.locks import FileLockProtected
from tickwork.schedulers._events import EventHub
from tickwork.schedulers._gate import StoreGate
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["MARGIN", "Election", "Leadership", "can_elect", "check_leader_only"]

#: The part of a term a leader gives up at its end, for clocks that run at slightly
#: different rates (or a store clock stepped by NTP): a tenth of the lease.
MARGIN = 0.1

#: Seconds between looks at a ``lock_path`` lock (the lock is taken by the pass, which
#: tries a free one every ``lock_retry_interval``, 1 s by default).
LOCK_INTERVAL = 0.5


def can_elect(store: BaseStore | None, lock_path: str | None) -> bool:
    """Whether the schedulers sharing ``store`` can elect a leader (``None``: the
    memory store a scheduler makes at start)."""
    return lock_path is not None or (store is not None and store.supports_election)


def check_leader_only(
    task: Task, alias: str, store: BaseStore | None, lock_path: str | None
) -> None:
    """Refuse a leader-only task in a store that cannot elect a leader, by name."""
    if task.leader_only and not can_elect(store, lock_path):
        kind = "MemoryStore" if store is None else type(store).__name__
        raise NoElectionError(task.id, alias, kind)


class Election(Protocol):
    """One store's way to elect a leader."""

    #: Seconds between attempts.
    interval: float

    def attempt(self) -> tuple[int, float] | None:
        """Take or keep the term: its generation and the ``time.monotonic()`` deadline
        until which this scheduler may act as leader, or ``None``."""

    def resign(self) -> None:
        """Give the term up (shutdown)."""


class StoreElection:
    """A term in a shared store (see the module docstring)."""

    def __init__(self, gate: StoreGate, identity: str) -> None:
        self._gate = gate
        self._identity = identity
        self.lease = float(gate.store.lease_time)
        self.interval = self.lease / 3

    def attempt(self) -> tuple[int, float] | None:
        if self._gate.standby:
            # Under lock_path only the lock holder processes the store: a standby that
            # led would hold leader-only tasks back from everyone.
            self._gate.store.resign(self._identity)
            return None
        asked = time.monotonic()  # before asking: the store's expiry is later than this
        generation = self._gate.store.elect(self._identity, self.lease)
        if generation is None:
            return None
        return generation, asked + self.lease * (1 - MARGIN)

    def resign(self) -> None:
        self._gate.store.resign(self._identity)


class LockElection:
    """The ``lock_path`` lock of a memory or file store as the term."""

    interval = LOCK_INTERVAL

    def __init__(self, guard: FileLockProtected) -> None:
        self._guard = guard
        self._generation: int | None = None

    @property
    def path(self) -> str:
        """The file that numbers the terms, beside the lock."""
        return self._guard.path + ".generation"

    def attempt(self) -> tuple[int, float] | None:
        if not self._guard.held:
            self._generation = None
            return None
        if self._generation is None:
            self._generation = self._next_generation()
        # The lock is held until released: no deadline of its own (checked live by
        # Leadership.leads).
        return self._generation, float("inf")

    def _next_generation(self) -> int:
        """Count the terms up in the file beside the lock (written under the lock, so
        two holders never read the same number)."""
        try:
            with open(self.path) as file:
                last = int(file.read().strip() or 0)
        except (OSError, ValueError):
            last = 0
        temporary = f"{self.path}.{os.getpid()}"
        with open(temporary, "w") as file:
            file.write(str(last + 1))
        os.replace(temporary, self.path)
        return last + 1

    def held(self) -> bool:
        """True while the lock is held."""
        return self._guard.held

    def resign(self) -> None:
        self._generation = None  # (the gate releases the lock itself)


@dataclass(slots=True)
class _Term:
    generation: int
    deadline: float


#: Seconds between looks at whether a paused scheduler was resumed (it then stands for
#: election again; resume() also wakes the thread).
PAUSED_LOOK = 0.5


class Leadership:
    """The elections of one scheduler's stores, kept up by a thread of their own."""

    def __init__(
        self,
        gates: Mapping[str, StoreGate],
        identity: str,
        events: EventHub,
        on_elected: Callable[[str], None],
        logger: logging.Logger,
        may_lead: Callable[[], bool] = lambda: True,
    ) -> None:
        self._gates = gates
        #: False while the scheduler is paused: a paused scheduler runs no leader-only
        #: task, so it must neither hold a term nor stand for one (an admin process,
        #: which is a paused scheduler, would otherwise keep the fleet leaderless).
        self._may_lead = may_lead
        self._identity = identity
        self._events = events
        self._on_elected = on_elected
        self._logger = logger
        self._elections: dict[str, Election] = {}
        self._terms: dict[str, _Term] = {}
        self._failing: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Set up an election for each store that can elect, and start the thread (it
        runs while there is an election to keep)."""
        self._stop.clear()
        self._elections = {}
        self.refresh()

    def refresh(self) -> None:
        """Follow the stores added and removed since (``add_store`` on a running
        scheduler): elections for new stores that can elect, none for removed ones."""
        for alias in set(self._elections) - set(self._gates):
            self._resign(alias, self._elections.pop(alias), "its store was removed")
        for alias, gate in list(self._gates.items()):
            if alias not in self._elections:
                found = self._election_for(gate)
                if found is not None:
                    self._elections[alias] = found
        if self._elections and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, name="tickwork-leadership", daemon=True
            )
            self._thread.start()

    def _election_for(self, gate: StoreGate) -> Election | None:
        if gate.store.supports_election:
            return StoreElection(gate, self._identity)
        guard = gate.lock_guard
        return None if guard is None else LockElection(guard)

    def stop(self) -> None:
        """Stop the thread and resign every term (before the stores close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for alias, election in list(self._elections.items()):
            self._resign(alias, election, "the scheduler shut down")
        self._elections = {}

    def _resign(self, alias: str, election: Election, reason: str) -> None:
        try:
            election.resign()
        except Exception as exc:  # the term then lapses by itself
            self._logger.warning("store %r: could not resign the leadership: %s", alias, exc)
        self._lost(alias, reason)

    # -- asking -------------------------------------------------------------------------

    def leads(self, alias: str) -> bool:
        """True while this scheduler is the leader of ``alias``'s fleet."""
        term = self._terms.get(alias)
        if term is None:
            return False
        election = self._elections.get(alias)
        if isinstance(election, LockElection):
            return election.held()
        return time.monotonic() < term.deadline

    def generation(self, alias: str) -> int | None:
        """The generation of this scheduler's term of ``alias`` (None: not leader)."""
        term = self._terms.get(alias)
        return term.generation if term is not None and self.leads(alias) else None

    def primary(self) -> str | None:
        """The store ``is_leader`` reports: ``default`` if it elects, else the first by
        alias that does."""
        if "default" in self._elections:
            return "default"
        return min(self._elections, default=None)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        next_at = {alias: 0.0 for alias in self._elections}
        while not self._stop.is_set():
            now = time.monotonic()
            standing = self._may_lead()
            for alias, election in list(self._elections.items()):
                next_at.setdefault(alias, 0.0)
                term = self._terms.get(alias)
                if not standing:
                    if term is not None:
                        self._resign(alias, election, "the scheduler is paused")
                    next_at[alias] = 0.0  # stand again as soon as it resumes
                    continue
                if term is not None and now >= term.deadline:
                    self._lost(alias, "its term ran out before it could be renewed")
                if now >= next_at.get(alias, 0.0):
                    next_at[alias] = now + election.interval
                    self._attempt(alias, election)
            wake = min(next_at.values(), default=now + 1.0) if standing else now + PAUSED_LOOK
            for term in self._terms.values():
                wake = min(wake, term.deadline)
            self._stop.wait(max(0.01, wake - time.monotonic()))

    def _attempt(self, alias: str, election: Election) -> None:
        try:
            won = election.attempt()
        except Exception as exc:
            # The term, if any, lapses at its deadline: a leader that cannot reach the
            # store must stop leading before another can start.
            if alias not in self._failing:
                self._failing.add(alias)
                self._logger.warning(
                    "store %r: could not take part in the leader election (%s: %s); "
                    "trying again every %.1f s",
                    alias,
                    type(exc).__name__,
                    exc,
                    election.interval,
                )
            return
        self._failing.discard(alias)
        term = self._terms.get(alias)
        if won is None:
            if term is not None:
                self._lost(alias, "another scheduler leads")
            return
        generation, deadline = won
        if time.monotonic() >= deadline:
            self._too_late(alias, election, generation)
            return
        if term is not None and term.generation == generation:
            term.deadline = deadline
            return
        if term is not None:
            self._lost(alias, f"its term was replaced by generation {generation}")
        self._terms[alias] = _Term(generation, deadline)
        self._logger.info(
            "store %r: this scheduler (%s) is the leader now (generation %d)",
            alias,
            self._identity,
            generation,
        )
        self._events.emit(
            LeadershipEvent(LEADERSHIP_CHANGED, alias, True, generation, self._identity)
        )
        self._on_elected(alias)

    def _too_late(self, alias: str, election: Election, generation: int) -> None:
        """The store's answer came after the deadline counted from the ask: the term
        may have expired in between and another member may lead, so this one must not
        act on it. It gives the term up (``LEADERSHIP_CHANGED`` if it led) and asks
        again at the next interval, as a new candidate."""
        self._logger.warning(
            "store %r: the leader election's answer (generation %d) came back after the "
            "term could have expired; not acting as leader on it and resigning",
            alias,
            generation,
        )
        try:
            election.resign()
        except Exception as exc:  # the term then lapses by itself
            self._logger.warning("store %r: could not resign the leadership: %s", alias, exc)
        self._lost(alias, "its renewal came back too late")

    def _lost(self, alias: str, reason: str) -> None:
        term = self._terms.pop(alias, None)
        if term is None:
            return
        self._logger.info(
            "store %r: this scheduler (%s) is no longer the leader (generation %d): %s",
            alias,
            self._identity,
            term.generation,
            reason,
        )
        self._events.emit(
            LeadershipEvent(LEADERSHIP_CHANGED, alias, False, term.generation, self._identity)
        )
