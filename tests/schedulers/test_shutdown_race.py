"""Start, then shut down at once: no run is errored, deleted or lost because shutdown
raced the first pass, and the event loop stops with nothing of ours pending.

Found on the earlier core (an ``AsyncIOScheduler`` with its own loop, 30 rounds of 20
one-shot tasks due at start): "Task was destroyed but it is pending" in 28 rounds on
SQLite, up to 25 ``TASK_ERROR 'cannot run tasks after shutdown'`` per 30 rounds, and
one-shot tasks deleted from the store without having run. Each round runs in a real
process, so what asyncio prints at exit is seen too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    from tickwork import AsyncIOScheduler
    from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_REMOVED

    def job(i):
        pass

    kind, directory, rounds, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    report = {"errors": 0, "ran": 0, "lost": 0, "left_due": 0}
    for n in range(rounds):
        if kind == "sqlite":
            store = {"type": "sqlalchemy", "url": f"sqlite:///{directory}/s{n}.db"}
        else:
            store = {"type": "file", "directory": f"{directory}/f{n}"}
        events = []
        scheduler = AsyncIOScheduler(stores={"default": store}, timezone="UTC")
        scheduler.add_listener(events.append, TASK_ERROR | TASK_EXECUTED | TASK_REMOVED)
        for i in range(20):
            scheduler.add_task(job, "date", args=[i], id=f"t{i}", run_at=datetime.now(UTC))
        scheduler.start()
        scheduler.shutdown(wait=wait)
        ran = {e.task_id for e in events if e.code == TASK_EXECUTED}
        report["errors"] += sum(e.code == TASK_ERROR for e in events)
        report["ran"] += len(ran)
        # What did not run must still be stored and due: a restart runs it.
        again = AsyncIOScheduler(stores={"default": store}, timezone="UTC")
        again.start(paused=True)
        left = {task.id for task in again.get_tasks()}
        again.shutdown()
        report["left_due"] += len(left)
        report["lost"] += 20 - len(ran | left)
    print(json.dumps(report))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("wait", [True, False])
def test_start_then_shutdown_at_once(tmp_path: Path, kind: str, wait: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, kind, str(tmp_path), "12", "1" if wait else "0"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "destroyed but it is pending" not in result.stderr
    assert "cannot run tasks after shutdown" not in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == 0, report
    assert report["lost"] == 0, report
    if wait:
        assert report["ran"] == 12 * 20, report  # everything due at start ran
