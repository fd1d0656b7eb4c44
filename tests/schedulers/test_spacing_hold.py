"""A spaced task's next run waits for the previous run's spacing to be written
(tickwork/schedulers/_retries.py ``Retrier.holds``, _spacing.py ``RunSpacer.pending``).

The executor frees a run's ``max_instances`` slot *before* it reports the outcome, and
the move of the next run time past the spacing is written by the spacer's thread after
that: a pass in between used to start the next run at once (a gap of about a
millisecond where ``cooldown`` asked for 0.5 s, seen under load). The moments are
held apart here with the store gate's lock, which the spacer needs to write.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from tickwork import BackgroundScheduler
from tickwork.events import TASK_EXECUTED, TaskExecutionEvent

COOLDOWN = 30.0


RAN = threading.Event()


def job() -> None:
    """A task function: says it ran."""
    RAN.set()


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_the_next_run_is_held_until_the_spacing_is_written() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    RAN.clear()
    scheduler.add_task(job, "interval", seconds=3600, cooldown=COOLDOWN, id="spaced")
    scheduler.start(paused=True)
    try:
        task = scheduler._plugins.stores["default"].lookup_task("spaced")
        assert task is not None
        retrier, dispatcher = scheduler._retrier, scheduler._dispatcher
        gate = scheduler._plugins.gates["default"]
        run_time = task.next_run_time
        assert run_time is not None
        assert not retrier.holds(task)

        # A run in flight: its slot is freed, its outcome not reported yet.
        retrier.note(task, [run_time], 1)
        assert retrier.holds(task)
        assert dispatcher.submit(task, [run_time + timedelta(seconds=1)]) is False

        with gate.lock:  # the spacer cannot write the move yet
            ended = datetime.now(task.next_run_time.tzinfo)
            retrier.emit(TaskExecutionEvent(TASK_EXECUTED, "spaced", "default", run_time))
            assert retrier.holds(task)  # the move is queued, not written
            assert dispatcher.submit(task, [run_time + timedelta(seconds=2)]) is False
        wait_for(lambda: not retrier.holds(task))
        moved = scheduler._plugins.stores["default"].lookup_task("spaced")
        assert moved is not None
        assert moved.next_run_time is not None
        assert moved.next_run_time >= ended + timedelta(seconds=COOLDOWN - 1)
        assert not RAN.wait(0.2)  # nothing was started while held
        # Once written, a due run is no longer held.
        assert dispatcher.submit(task, [run_time + timedelta(seconds=3)]) is True
        assert RAN.wait(5)
    finally:
        scheduler.shutdown()
