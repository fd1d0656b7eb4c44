"""SIGTERM in sync programs: ``BlockingScheduler`` and ``BackgroundScheduler(handle_signals=
True)`` shut down the ordinary way, shutdown-trigger tasks included.

Found: a ``BackgroundScheduler`` in a sync program skipped its shutdown-trigger tasks on
SIGTERM (Ctrl-C ran them), and nothing in the docs said so. Each case is a real process
that gets a real signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

PROGRAM = textwrap.dedent(
    """
    import sys, time
    from tickwork import BackgroundScheduler, BlockingScheduler

    kind = sys.argv[1]

    def tick():
        print("tick", flush=True)

    def cleanup():
        print("cleanup", flush=True)

    if kind == "blocking":
        scheduler = BlockingScheduler(timezone="UTC")
    else:
        scheduler = BackgroundScheduler(timezone="UTC", handle_signals=kind == "handled")
    scheduler.add_task(tick, "interval", seconds=0.1)
    scheduler.add_task(cleanup, "shutdown")
    scheduler.start()
    if kind == "blocking":
        print("start returned", flush=True)
    else:
        time.sleep(30)
        print("slept to the end", flush=True)
    """
)


def _run_and_signal(kind: str, signum: int) -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "tick" not in process.stdout.readline():
            pass
        process.send_signal(signum)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, output


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_blocking_scheduler_returns_from_start_after_a_clean_shutdown(signum: int) -> None:
    code, output = _run_and_signal("blocking", signum)
    assert code == 0, output
    assert "cleanup" in output
    assert "start returned" in output
    assert output.index("cleanup") < output.index("start returned")


@pytest.mark.slow
def test_background_scheduler_with_handle_signals_runs_cleanup_then_exits_143() -> None:
    code, output = _run_and_signal("handled", signal.SIGTERM)
    assert code == 143, output
    assert "cleanup" in output
    assert "slept to the end" not in output


@pytest.mark.slow
def test_without_handle_signals_sigterm_ends_the_program_at_once() -> None:
    # The documented default: the signal's own action, no shutdown.
    code, output = _run_and_signal("plain", signal.SIGTERM)
    assert code == -signal.SIGTERM
    assert "cleanup" not in output


def test_blocking_scheduler_shut_down_by_its_own_task_returns() -> None:
    from tickwork import BlockingScheduler

    ran: list[str] = []
    scheduler = BlockingScheduler(timezone="UTC")

    def stop() -> None:
        ran.append("stop")
        scheduler.shutdown()

    scheduler.add_task(stop)
    scheduler.add_task(ran.append, "shutdown", args=["cleanup"])
    began = time.monotonic()
    scheduler.start()  # returns once shut down
    assert time.monotonic() - began < 5
    assert ran == ["stop", "cleanup"]
    assert not scheduler.running
