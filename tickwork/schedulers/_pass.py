"""One processing pass over every store: due tasks, planned runs, started runs, and the
time the driver may sleep until.

The drivers (asyncio, background thread) only sleep and wake around
:meth:`PassRunner.run_pass` (or :meth:`PassRunner.steps`, which lets an event loop
breathe between batches). Per store the work is the :class:`StoreGate`'s: stores in
this process's memory are processed inline, batch by batch; stores that do I/O on
their gate's own thread, so one slow store never holds up another or the loop. When
such a batch ends it wakes the driver if its store needs attention before the driver
planned to wake.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta

from tickwork.clock import Clock
from tickwork.schedulers._gate import BatchResult, StoreGate

__all__ = ["SHUTDOWN_WAIT", "PassRunner"]

#: How long shutdown waits for a store's batch still running on its gate's thread. Stores
#: with ``io_timeout`` (SQL, Redis) end theirs sooner; this bounds stores without one.
SHUTDOWN_WAIT = 30.0


class PassRunner:
    """Runs passes over a scheduler's gates."""

    def __init__(
        self,
        gates: Mapping[str, StoreGate],
        clock: Clock,
        batch_size: int,
        running: Callable[[], bool],
        on_removed: Callable[[str, tuple[str, ...]], None],
        wake_for: Callable[[datetime | None], None],
        logger: logging.Logger,
    ) -> None:
        self._gates = gates
        self._logger = logger
        self._clock = clock
        self.batch_size = batch_size
        self._running = running
        self._on_removed = on_removed
        self._wake_for = wake_for
        #: Seconds between attempts of a standby scheduler to take a store's lock.
        self.lock_retry_interval = 1.0
        #: The timestamp of the earliest time the driver plans to wake at (None: not
        #: sleeping on a deadline). Adding a later task then needs no wake-up at all.
        self.planned_wakeup: float | None = None

    def run_pass(self, now: datetime) -> float | None:
        """One whole pass; returns the seconds the driver may sleep (None: until woken)."""
        for _ in self.steps(now):
            pass
        return self.plan(now)

    def steps(self, now: datetime) -> Iterator[None]:
        """A pass in steps: yields after each full batch of an inline store (more may be
        due), so a driver on an event loop lets other work run in between."""
        # Cleared first: changes made while the pass runs must wake the driver again.
        self.planned_wakeup = None
        for gate in self._open_gates():
            if gate.blocking:
                if gate.wants_batch(now):
                    self._launch(gate, now)
                continue
            while self.batch(gate, now).count >= self.batch_size and self._running():
                yield

    def inline_batches(self, now: datetime) -> int:
        """One batch of each in-process store (the timer's callback starts the due runs
        with it); returns how many tasks were handled."""
        return sum(self.batch(gate, now).count for gate in self._open_gates() if not gate.blocking)

    def inline_pass(self, now: datetime) -> tuple[bool, float | None]:
        """The whole pass from a timer's callback, when one batch of each store is all
        of it: ``(True, seconds the driver may sleep)``. ``(False, None)`` when the driver
        must finish it: a store does I/O (its batch runs on its gate's thread) or a
        batch was full (more may be due, after a yield to the loop).

        Why: a spread load wakes the scheduler once per run (1,000 tasks at distinct
        offsets of a second: 1,000 wake-ups a second). Waking the driver after the
        timer's batch cost a second pass that found nothing due, a second look-up of
        the store's next time and a new future: a third of the scheduler's time per
        wake-up. The driver now sleeps on until the timer is re-armed past this."""
        self.planned_wakeup = None  # (as in steps: a change made meanwhile wakes the driver)
        finished, limit = True, self.batch_size
        for gate in list(self._gates.values()):
            if not gate.may_process():
                continue
            if gate.store.blocking or self.batch(gate, now).count >= limit:
                finished = False
        if not finished:
            return False, None
        return True, self.plan(now)

    def batch(self, gate: StoreGate, now: datetime) -> BatchResult:
        """One batch of one store, on the calling thread."""
        result = gate.process_batch(now, self.batch_size)
        if result.removed:
            self._on_removed(gate.alias, result.removed)
        return result

    def plan(self, now: datetime) -> float | None:
        """Turn the stores' next times (and their polls, and lock retries) into the
        seconds the driver may sleep; ``None`` means until woken."""
        # (No list of candidates per gate, and each timestamp taken once: this runs at
        # every wake-up, a thousand times a second under a spread load.)
        deadline: datetime | None = None
        deadline_ts = 0.0
        for gate in list(self._gates.values()):
            moment: datetime | None = None
            if gate.standby:
                moment = now + timedelta(seconds=self.lock_retry_interval)
            elif gate.in_flight is None or gate.in_flight.done():
                moment = gate.next_time  # (a running batch wakes the driver)
            poll = gate.store.poll_interval
            if poll is not None:
                polled = now + timedelta(seconds=poll)
                if moment is None or polled.timestamp() < moment.timestamp():
                    moment = polled
            if moment is not None:
                moment_ts = moment.timestamp()
                if deadline is None or moment_ts < deadline_ts:
                    deadline, deadline_ts = moment, moment_ts
        if deadline is None:
            self.planned_wakeup = None
            return None
        self.planned_wakeup = deadline_ts
        delay = (deadline - now).total_seconds()
        return delay if delay > 0.0 else 0.0  # (max(), without the call)

    def wait_idle(self, timeout: float = SHUTDOWN_WAIT) -> None:
        """Wait for the batches running on gates' threads (shutdown: a batch that
        started runs finishes handing them over before the executors stop). A store's
        ``io_timeout`` bounds its batch; a store without one gets ``timeout`` seconds, then
        shutdown goes on without it, and says so."""
        deadline = time.monotonic() + timeout
        for gate in list(self._gates.values()):
            if not gate.wait_idle(max(0.0, deadline - time.monotonic())):
                self._logger.warning(
                    "store %r: a batch is still running after %.0f s; shutting down without "
                    "waiting for it (runs it hands over now may be refused)",
                    gate.alias,
                    timeout,
                )

    def _open_gates(self) -> list[StoreGate]:
        return [gate for gate in list(self._gates.values()) if gate.may_process()]

    def _launch(self, gate: StoreGate, now: datetime) -> None:
        future = gate.launch(now, self.batch_size)

        def done(finished: concurrent.futures.Future[BatchResult]) -> None:
            if finished.cancelled() or finished.exception() is not None:
                return  # (process_batch never raises; a cancelled one did nothing)
            result = finished.result()
            if result.removed:
                self._on_removed(gate.alias, result.removed)
            if self._running():
                self._wake_for(result.next_time)

        future.add_done_callback(done)
