"""``--app module:scheduler``: an application's own scheduler, imported from the working
directory. ``tickwork run`` runs each kind of scheduler until SIGTERM or SIGINT (an
ordinary shutdown: shutdown-trigger tasks run, exit status 0); the inspection commands
start it paused and run nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import tickwork, wait_for

APP = textwrap.dedent(
    """
    from pathlib import Path

    from tickwork.schedulers import (
        AsyncIOScheduler, BackgroundScheduler, BlockingScheduler, NativeAsyncIOScheduler,
    )
    from tickwork.stores import FileStore

    HERE = Path(__file__).resolve().parent

    def note(text):
        with (HERE / "out.txt").open("a") as out:
            out.write(text + "\\n")

    async def note_async(text):
        note(text)

    def scheduler_of(kind, **options):
        scheduler = kind(**options)
        function = note_async if issubclass(kind, AsyncIOScheduler) else note
        scheduler.add_task(function, "interval", seconds=0.2, args=["tick"], id="tick")
        scheduler.add_task(function, "shutdown", args=["bye"], id="bye")
        return scheduler

    background = scheduler_of(BackgroundScheduler)
    blocking = scheduler_of(BlockingScheduler)
    asyncio_scheduler = scheduler_of(AsyncIOScheduler)
    native = scheduler_of(NativeAsyncIOScheduler)
    persistent = scheduler_of(BackgroundScheduler, stores={"default": FileStore(HERE / "store")})
    not_a_scheduler = note
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "cliapp.py").write_text(APP)
    return tmp_path


def _lines(app_dir: Path) -> list[str]:
    path = app_dir / "out.txt"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize(
    ("name", "signum"),
    [
        ("background", signal.SIGTERM),
        ("blocking", signal.SIGTERM),
        ("asyncio_scheduler", signal.SIGTERM),
        ("native", signal.SIGTERM),
        ("background", signal.SIGINT),
        ("native", signal.SIGINT),
    ],
)
def test_run_until_a_signal(app_dir: Path, name: str, signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tickwork", "run", f"cliapp:{name}", "--log-level", "info"],
        cwd=app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _lines(app_dir).count("tick") >= 2, timeout=30)
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert _lines(app_dir)[-1] == "bye"  # the ordinary shutdown ran the shutdown task
    assert f"received {signum.name}: shutting the scheduler down" in err
    assert f"from cliapp:{name}" in err  # the command's own log line names the app


def test_inspecting_an_app_starts_it_paused(app_dir: Path) -> None:
    for name in ("native", "blocking", "asyncio_scheduler"):
        listed = tickwork("tasks", "list", "--app", f"cliapp:{name}", "--json", cwd=app_dir)
        assert listed.code == 0, listed
        infos = {info["id"]: info for info in listed.json()}
        assert set(infos) == {"tick", "bye"}
        assert infos["tick"]["trigger"] == "IntervalTrigger(interval=0:00:00.200000)"
    assert _lines(app_dir) == []  # started paused: nothing ran (the shutdown task neither)


def test_changes_reach_an_apps_persistent_store_only(app_dir: Path) -> None:
    paused = tickwork("tasks", "pause", "tick", "--app", "cliapp:persistent", cwd=app_dir)
    assert paused.code == 0, paused
    # Another process looking at the store (the application's) sees the task paused.
    shown = tickwork("tasks", "show", "tick", "--store", "store", "--json", cwd=app_dir)
    assert shown.code == 0, shown
    assert (shown.json()["paused"], shown.json()["next_run_time"]) == (True, None)

    refused = tickwork("tasks", "pause", "tick", "--app", "cliapp:background", cwd=app_dir)
    assert (refused.code, refused.out) == (2, ""), refused
    assert "is in a memory store" in refused.error_line()


def test_bad_app_references(app_dir: Path) -> None:
    missing = tickwork("run", "cliapp:nope", cwd=app_dir)
    assert missing.code == 2, missing
    assert missing.error_line() == (
        "tickwork: error: cannot resolve reference 'cliapp:nope': 'nope' not found in cliapp"
    )
    wrong = tickwork("tasks", "list", "--app", "cliapp:not_a_scheduler", cwd=app_dir)
    assert wrong.code == 2, wrong
    assert "'cliapp:not_a_scheduler' is a function, not a tickwork scheduler" in wrong.error_line()
