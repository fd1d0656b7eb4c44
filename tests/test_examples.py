"""The examples in ``examples/`` run for real, in subprocesses, and do what they say."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import servers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def run_example(name: str, *args: str, timeout: float = 12) -> str:
    """Run ``examples/<name>`` to completion; return its combined output. The process is
    killed if it outlives ``timeout``."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, f"{name} exited with {result.returncode}:\n{result.stdout}"
    return result.stdout


def test_demo_serves_its_dashboard_until_ctrl_c() -> None:
    """``make demo ARGS=--serve``: the dashboard address it prints answers with the
    demo's tasks (given the printed token), and Ctrl-C stops it cleanly."""
    demo = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "demo.py"), "--serve", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Ctrl-C as from a terminal: a suite started in the background by a shell (`make
        # test &`) ignores SIGINT, and the demo would inherit that and never stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        for line in demo.stdout:
            lines.append(line)
            found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)  \(token: (\S+)\)", line)
            if found:
                break
        else:
            raise AssertionError("".join(lines))
        address, token = found[1], found[2]
        assert httpx.get(f"{address}api/tasks", timeout=5).status_code == 401
        answer = httpx.get(
            f"{address}api/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        assert "tick" in {task["id"] for task in answer.json()["tasks"]}
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=15)
        assert demo.returncode == 0, rest
        assert "goodbye: the shutdown-trigger task runs during shutdown" in rest, rest
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_demo_runs_every_kind_of_task_and_shuts_down_cleanly() -> None:
    out = run_example("demo.py", "--seconds", "6.5")

    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/  \(token: ", out), out
    assert re.search(r"tick #3 \(sync, every 1 s\)", out), out
    assert re.search(r"fetch #2 done \(async, every 2\.5 s\)", out), out
    assert out.count("reminder: three seconds have passed") == 1, out
    # The failing task: logged with its traceback, reported to the listener, and the
    # scheduler carried on (ticks after it).
    assert "RuntimeError: flaky failed on purpose" in out, out
    assert "event TASK_ERROR: task 'flaky' raised RuntimeError" in out, out
    assert out.index("flaky is about to raise") < out.index("tick #5"), out
    assert "event SCHEDULER_STARTED" in out, out
    assert "event TASK_REMOVED: task 'reminder'" in out, out
    if has_module("tickwork.triggers.cron"):
        assert "on-the-5s at wall-clock second" in out, out
    if has_module("tickwork.stores.sqlalchemy"):
        assert "persisted #1" in out, out
        found = re.search(r"SQLite store in (\S+)", out)
        assert found, out
        assert not Path(found[1]).parent.exists(), "the demo left its SQLite files behind"
    # Clean shutdown: the shutdown task ran, then the scheduler stopped, then the summary.
    goodbye = out.index("goodbye: the shutdown-trigger task runs during shutdown")
    stopped = out.index("event SCHEDULER_SHUTDOWN")
    assert goodbye < stopped < out.index("scheduler stopped cleanly: running=False"), out
    assert re.search(r"goodbye +ran 1 time\(s\)", out), out
    assert re.search(r"flaky +ran [12] time\(s\), raised [12] time\(s\)", out), out


def test_lifecycle_example_sets_up_once_ticks_and_cleans_up_once() -> None:
    out = run_example("lifecycle.py")

    for variant in ("sync", "async"):
        lines = [line for line in out.splitlines() if line.startswith(f"[{variant}]")]
        setups = [i for i, line in enumerate(lines) if "setup" in line]
        ticks = [i for i, line in enumerate(lines) if " tick " in line]
        cleanups = [i for i, line in enumerate(lines) if "cleanup" in line]
        assert len(setups) == 1, out
        assert len(cleanups) == 1, out
        assert len(ticks) >= 2, out
        assert setups[0] < min(ticks), out
        assert max(ticks) < cleanups[0], out
        assert f"cleanup after {len(ticks)} ticks" in lines[cleanups[0]], out
    assert "Traceback" not in out, out
    assert out.rstrip().endswith("scheduler stopped: running=False"), out


def test_background_example_runs_beside_the_main_thread() -> None:
    out = run_example("background.py")

    assert "heartbeat #3" in out, out
    assert "main thread: step 3 done" in out, out
    assert (
        out.index("main thread: step 3 done")
        < out.index("shutdown: ")
        < out.index("scheduler stopped: running=False")
    ), out


def free_port() -> int:
    return servers.free_port()


def get_json(client: httpx.Client, path: str) -> dict[str, int]:
    response = client.get(path)
    response.raise_for_status()
    data: dict[str, int] = response.json()
    return data


def test_fastapi_example_under_uvicorn() -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "fastapi_app:app"),
            *("--app-dir", str(EXAMPLES), "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    first = get_json(client, "/count")["count"]
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "uvicorn exited early"
                    assert time.monotonic() < deadline, "uvicorn did not come up in 10 s"
                    time.sleep(0.1)
            time.sleep(0.7)
            assert get_json(client, "/count")["count"] > first  # the 0.2 s task runs

            response = client.post("/tasks", params={"seconds": 0.1})
            response.raise_for_status()
            new_id = response.json()["id"]
            assert new_id in [task["id"] for task in client.get("/tasks").json()]
            time.sleep(0.5)
            assert get_json(client, "/count")["pings"] >= 2  # the task added at run time runs

        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()

    assert server.returncode == 0, out
    # The lifespan shutdown completed, after the scheduler ran its shutdown-trigger task.
    farewell = out.index("scheduler shutting down; count reached")
    assert out.index("Application startup complete") < farewell, out
    assert farewell < out.index("Application shutdown complete"), out
    assert "Traceback" not in out, out


def test_dashboard_example_under_uvicorn() -> None:
    if not (has_module("starlette") and has_module("jinja2") and has_module("fastapi")):
        pytest.skip("needs the web extra and fastapi")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TICKWORK_ADMIN_TOKEN", None)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "dashboard_app:app"),
            *("--app-dir", str(EXAMPLES), "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"token \(set TICKWORK_ADMIN_TOKEN to choose one\): (\S+)", line)
        assert found, line
        headers = {"Authorization": f"Bearer {found[1]}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.get("/state")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "uvicorn exited early"
                    assert time.monotonic() < deadline, "uvicorn did not come up in 10 s"
                    time.sleep(0.1)
            assert client.get("/admin/api/tasks").status_code == 401
            tasks = client.get("/admin/api/tasks", headers=headers).json()["tasks"]
            assert {task["id"] for task in tasks} == {"heartbeat", "report", "sync"}
            assert client.post("/admin/api/tasks/report/run", headers=headers).status_code == 200
            deadline = time.monotonic() + 10
            while client.get("/state").json()["reports"] != 1:
                assert time.monotonic() < deadline, "the requested run did not happen"
                time.sleep(0.1)
            assert client.post("/admin/api/tasks/sync/pause", headers=headers).status_code == 200
            assert client.get("/admin/api/tasks/sync", headers=headers).json()["paused"] is True
            page = client.get("/admin/", headers=headers)
            assert "Daily report" in page.text
            assert 'href="/admin/tasks/report"' in page.text
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, out
    assert "Traceback" not in out, out
