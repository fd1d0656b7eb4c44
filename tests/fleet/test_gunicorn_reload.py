"""gunicorn ``kill -HUP`` (the usual reload) loses no slot.

A HUP makes the master start new workers and stop every old one at once (SIGTERM,
graceful): the old ones stop while the new ones are still importing the app, so for a
second or more no scheduler runs. Every slot of that gap must still be accounted for:
run, or reported ``TASK_MISSED`` (event and log line), or named not run in a warning;
never run twice. Before the fix, three HUPs lost 4 to 5 slots (lock_path) and 5 to 7 (a
shared PostgreSQL table) without any trace.

The app is ``reload_app.py``: three uvicorn workers, each with an ``AsyncIOScheduler``
and the same task, every second, each run lasting 0.3 s. The HUPs come 0.1 s into a
slot, while its run is in progress. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import importlib.util
import math
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import servers
from fleet_support import (
    Verdict,
    dropped_runs,
    gunicorn,
    judge,
    read_records,
    wait_for_log,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None or importlib.util.find_spec("uvicorn") is None,
        reason="needs gunicorn and uvicorn (the test extra)",
    ),
]

WORKERS = 3
#: When the HUPs are sent, in seconds after the first judged slot: 0.1 s into a slot.
HUPS = (3.1, 7.1, 11.1)
#: After the last reload's workers have started, the fleet runs this long before it
#: stops (slots closer to the stop are not judged).
TAIL = 2.5
STARTED = "Application startup complete"


def reload_three_times(directory: Path, **env: str) -> Verdict:
    """Serve reload_app, HUP the master three times, and judge every slot from the
    first whole second after start-up until shortly before the stop."""
    environment = {"RELOAD_OUT_DIR": str(directory), **env}
    with gunicorn(directory, "reload_app:app", WORKERS, environment) as (master, log):
        first = math.floor(time.time()) + 1
        for reloads, offset in enumerate(HUPS, start=1):
            time.sleep(max(0.0, first + offset - time.time()))
            master.send_signal(signal.SIGHUP)
            # The next HUP only once this one's workers are serving.
            wait_for_log(log, STARTED, WORKERS * (reloads + 1), master)
        time.sleep(TAIL)
        last = time.time() - 1.0
    text = log.read_text()
    records = read_records(directory)
    verdict = judge(records, ["tick"], first, last, dropped_runs(text))
    runners = Counter(r.pid for r in records if r.code == "EXE" and first <= r.slot <= last)
    print(f"\n{len(HUPS)} HUPs, {WORKERS} workers: {verdict}; runs per worker: {dict(runners)}")
    assert text.count("Booting worker") == WORKERS * (len(HUPS) + 1), text
    assert len(runners) > len(HUPS), "the reloads did not hand the task over"
    return verdict


def test_lock_path_reloads_lose_no_slot(tmp_path: Path) -> None:
    verdict = reload_three_times(tmp_path)
    assert verdict.duplicates == []
    assert verdict.lost == []
    assert verdict.skipped == 0
    # The new holder runs a gap slot up to 1 s late and reports the older ones missed
    # (events): with lock_path nothing is left to a warning.
    assert verdict.logged == 0


@pytest.mark.external_service("postgresql")
def test_shared_postgresql_reloads_lose_no_slot(tmp_path: Path) -> None:
    with servers.temporary_database("postgresql") as url:
        verdict = reload_three_times(tmp_path, RELOAD_DATABASE_URL=url)
    # The new workers re-add the task with replace_existing=True; the trigger is the same,
    # so the stored next run time stays and the gap's slots are run, or reported missed
    # (events) when later than the grace time: nothing is left to a warning.
    assert verdict.duplicates == []
    assert verdict.lost == []
    assert verdict.skipped == 0
    assert verdict.logged == 0
