"""``examples/gunicorn_app.py`` under ``gunicorn -w 4 -k uvicorn.workers.UvicornWorker``,
for real: every worker has a scheduler with the same tasks, and each slot runs once, with
``lock_path`` on one host (also when the worker running the tasks is SIGKILLed) and with
a shared PostgreSQL table."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import servers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None or importlib.util.find_spec("uvicorn") is None,
        reason="needs gunicorn and uvicorn (the test extra)",
    ),
]

ROOT = Path(__file__).resolve().parent.parent.parent
WORKERS = 4


def free_port() -> int:
    return servers.free_port()


@contextlib.contextmanager
def gunicorn(tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """Serve the example with 4 workers; yield (master, its log, port) once every worker
    has started its app (and scheduler). Always stopped (SIGTERM, then SIGKILL)."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TICKWORK_RUN_LOG": str(tmp_path / "runs.log"),
        "TICKWORK_LOCK_DIR": str(tmp_path),
        **env,
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "-w", str(WORKERS)),
        *("-k", "uvicorn.workers.UvicornWorker", "--graceful-timeout", "10"),
        *("--chdir", str(ROOT / "examples"), "--bind", f"127.0.0.1:{port}"),
        "gunicorn_app:app",
    ]
    with log.open("wb") as output:
        master = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("Application startup complete") < WORKERS:
            assert master.poll() is None, f"gunicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"workers did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield master, log, port
    finally:
        if master.poll() is None:
            master.send_signal(signal.SIGTERM)
            try:
                master.wait(20)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(5)
    assert "Traceback" not in log.read_text(), log.read_text()


def runs(tmp_path: Path) -> list[tuple[str, float, int]]:
    path = tmp_path / "runs.log"
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        task_id, when, pid = line.split()
        found.append((task_id, float(when), int(pid)))
    return found


def check_each_slot_once(found: list[tuple[str, float, int]], first: float, last: float) -> str:
    """Every slot of "heartbeat" (each second) and "report" (even seconds) in the window
    ran exactly once. Returns a one-line summary."""
    counts = Counter((task_id, when) for task_id, when, _ in found)
    seconds = range(math.ceil(first), math.floor(last) + 1)
    expected = [("heartbeat", float(s)) for s in seconds]
    expected += [("report", float(s)) for s in seconds if s % 2 == 0]
    twice = {slot: n for slot, n in counts.items() if n > 1}
    missing = [slot for slot in expected if slot not in counts]
    assert twice == {}, f"slots run more than once: {twice}"
    assert missing == [], f"slots never run: {missing}"
    pids = Counter(pid for _, when, pid in found if first <= when <= last)
    return f"{len(expected)} slots, each run once; runs per worker: {dict(pids)}"


def test_lock_path_workers_run_each_slot_once_and_survive_a_killed_holder(
    tmp_path: Path,
) -> None:
    with gunicorn(tmp_path) as (_, log, port):
        ready = time.time()
        time.sleep(3)
        # Any worker answers; all of them see the same run log.
        answer = httpx.get(f"http://127.0.0.1:{port}/runs", timeout=5).json()
        assert answer["runs"], answer
        holders = {pid for _, when, pid in runs(tmp_path) if when > ready}
        assert len(holders) == 1, f"more than one worker ran tasks: {holders}"
        (holder,) = holders
        now = time.time()
        time.sleep(math.floor(now) + 1.2 - now)  # just after a slot ran
        killed_at = time.time()
        os.kill(holder, signal.SIGKILL)  # gunicorn replaces the worker
        time.sleep(4)
        last = time.time() - 1
        heirs = {pid for _, when, pid in runs(tmp_path) if when > killed_at}
        assert len(heirs) == 1, heirs
        assert holder not in heirs
        assert re.search(
            rf"\(pid:{holder}\) was sent SIGKILL|Worker \(pid:{holder}\)", log.read_text()
        )
    summary = check_each_slot_once(runs(tmp_path), ready + 1, last)
    print(f"\ngunicorn -w {WORKERS}, lock_path, holder SIGKILLed: {summary}")


@pytest.mark.external_service("postgresql")
def test_workers_sharing_postgresql_run_each_slot_once(tmp_path: Path) -> None:
    with (
        servers.temporary_database("postgresql") as url,
        gunicorn(tmp_path, TICKWORK_DATABASE_URL=url),
    ):
        ready = time.time()
        time.sleep(6)
        last = time.time() - 1
    summary = check_each_slot_once(runs(tmp_path), ready + 1, last)
    print(f"\ngunicorn -w {WORKERS}, shared PostgreSQL table: {summary}")
