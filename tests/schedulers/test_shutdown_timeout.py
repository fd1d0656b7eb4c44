"""``shutdown(timeout=...)`` and the scheduler's ``shutdown_timeout``: a running task
holds a shutdown for at most that long; coroutines are then cancelled, runs in threads
reported and left behind, and the shutdown-trigger tasks still run.

Found with uvicorn: one running 15 s task held SIGTERM for 13 s, and uvicorn's
``--timeout-graceful-shutdown`` could not help (the lifespan shutdown waited).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import servers

from tickwork.events import TASK_ERROR, TASK_EXECUTED
from tickwork.exceptions import ConfigurationError
from tickwork.schedulers import AsyncIOScheduler, BackgroundScheduler, NativeAsyncIOScheduler


async def test_a_coroutine_past_the_timeout_is_cancelled_and_reported() -> None:
    events: list[Any] = []
    cleaned: list[str] = []
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(30)

    async def cleanup() -> None:
        cleaned.append("done")

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_listener(events.append, TASK_ERROR | TASK_EXECUTED)
    scheduler.add_task(slow, id="slow")
    scheduler.add_task(cleanup, "shutdown", id="cleanup")
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    began = time.monotonic()
    await scheduler.shutdown_async(timeout=0.3)
    took = time.monotonic() - began
    assert took < 2.0, f"shutdown took {took:.1f} s"
    (error,) = [e for e in events if e.code == TASK_ERROR]
    assert error.task_id == "slow"
    assert isinstance(error.exception, asyncio.CancelledError)
    assert "shutdown timeout" in str(error.exception)
    assert cleaned == ["done"]  # the shutdown-trigger task still ran
    assert not scheduler.running


def test_a_thread_past_the_timeout_is_reported_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    started = threading.Event()
    cleaned: list[str] = []

    def stuck() -> None:
        started.set()
        release.wait(10)

    scheduler = BackgroundScheduler(timezone="UTC", shutdown_timeout=0.3)
    scheduler.add_task(stuck, id="stuck")
    scheduler.add_task(cleaned.append, "shutdown", args=["done"], id="cleanup")
    scheduler.start()
    assert started.wait(5)
    began = time.monotonic()
    try:
        scheduler.shutdown()  # (bounded by the shutdown_timeout keyword)
        took = time.monotonic() - began
    finally:
        release.set()
    assert took < 3.0, f"shutdown took {took:.1f} s"
    assert cleaned == ["done"]
    assert "cannot be cancelled" in caplog.text
    assert "stuck" in caplog.text


async def test_async_with_uses_the_scheduler_keyword() -> None:
    async def slow() -> None:
        await asyncio.sleep(30)

    began = 0.0
    async with NativeAsyncIOScheduler(timezone="UTC", shutdown_timeout=0.2) as scheduler:
        scheduler.add_task(slow)
        await asyncio.sleep(0.1)
        began = time.monotonic()
    assert time.monotonic() - began < 2.0


async def test_without_a_timeout_shutdown_still_waits() -> None:
    done: list[str] = []

    async def short() -> None:
        await asyncio.sleep(0.3)
        done.append("finished")

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_task(short)
    scheduler.start()
    await asyncio.sleep(0.05)
    await scheduler.shutdown_async()
    assert done == ["finished"]


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "5", True])
def test_a_bad_timeout_is_refused_by_name(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="shutdown timeout") as caught:
        BackgroundScheduler(shutdown_timeout=value)
    assert repr(value) in str(caught.value)
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        with pytest.raises(ConfigurationError, match=repr(value).replace("(", r"\(")):
            scheduler.shutdown(timeout=value)
    finally:
        scheduler.shutdown()


APP = textwrap.dedent(
    """
    import asyncio
    from starlette.applications import Starlette
    from tickwork import AsyncIOScheduler

    async def long_job():
        print("job started", flush=True)
        await asyncio.sleep(15)

    scheduler = AsyncIOScheduler(timezone="UTC", shutdown_timeout=1)
    scheduler.add_task(long_job)
    app = scheduler.asgi(Starlette())
    """
)


def _free_port() -> int:
    return servers.free_port()


@pytest.mark.slow
def test_uvicorn_sigterm_is_not_held_by_a_long_task(tmp_path: Path) -> None:
    (tmp_path / "long_app.py").write_text(APP)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "long_app:app",
            "--app-dir",
            str(tmp_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if "job started" in line:
                break
        else:
            pytest.fail("the job never started")
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        took = time.monotonic() - began
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert took < 5.0, f"SIGTERM took {took:.1f} s with a 15 s task running"
