"""``tickwork dashboard``: the admin app (``tickwork.web``) served by uvicorn for a store;
without the web extra, a one-line error naming it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import HERE
from cli_stores import StoreLocation

from tickwork.cli import ExitCode, main


def test_without_the_web_extra_the_error_names_it(tmp_path: Path) -> None:
    # tickwork.web made unimportable, as it is when its extra is not installed.
    code = (
        "import sys; sys.modules['tickwork.web'] = None\n"
        "from tickwork.cli import main\n"
        f"raise SystemExit(main(['dashboard', '--store', {str(tmp_path)!r}, '--token', 't']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (ExitCode.ERROR, ""), result
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "tickwork: error: the dashboard needs the web extra: pip install 'tickwork[web]'"
    )


def test_an_empty_token_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tickwork.web")
    empty = tmp_path / "token"
    empty.write_text("\n")
    code = main(["dashboard", "--store", str(tmp_path), "--token-file", str(empty)])
    assert code == ExitCode.ERROR
    assert capsys.readouterr().err == f"tickwork: error: --token-file {str(empty)!r} is empty\n"


def test_serves_the_admin_app_for_a_store(sqlite_location: StoreLocation) -> None:
    pytest.importorskip("tickwork.web")
    httpx = pytest.importorskip("httpx")
    from cli_port import free_port

    seed = sqlite_location.worker()
    seed.add_task("cli_helpers:record_call", "interval", hours=1, args=["d"], id="hourly")
    seed.start(paused=True)
    seed.shutdown()
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tickwork",
            "dashboard",
            *sqlite_location.args,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=HERE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # No --token: a new one is made and printed, so the app is never open.
        first = process.stderr.readline()
        assert first.startswith("dashboard token (pass --token or --token-file to choose one): ")
        token = first.rsplit(" ", 1)[1].strip()
        assert process.stderr.readline() == (
            f"tickwork dashboard on http://127.0.0.1:{port}/ (Ctrl-C stops it)\n"
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{base}/api/tasks", headers=headers)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert response.status_code == 200, response.text
        assert [row["id"] for row in response.json()["tasks"]] == ["hourly"]
        assert httpx.get(f"{base}/api/tasks").status_code == 401

        paused = httpx.post(f"{base}/api/tasks/hourly/pause", headers=headers)
        assert paused.status_code == 200, paused.text
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 0
    check = sqlite_location.worker()
    check.start(paused=True)
    try:
        assert check.get_task("hourly").next_run_time is None  # type: ignore[union-attr]
    finally:
        check.shutdown()
