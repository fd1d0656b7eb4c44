"""The admin app made from a store URL alone, driving a fleet member through the store on
every kind of shared store: its actions reach the fleet, its pages show the fleet's runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from store_locations import STORE_KINDS, store_location
from web_server import serve

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url
from tickwork.web import admin_app

ADMIN = {"Authorization": "Bearer web-admin-token"}


@pytest.fixture(params=STORE_KINDS)
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    with store_location(request.param, tmp_path, "web") as found:
        yield found


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_store_admin_app_drives_the_fleet(store_url: tuple[str, dict[str, str]]) -> None:
    url, options = store_url
    worker = BackgroundScheduler(
        stores={"default": store_from_url(url, **options)}, identity="web-worker-1"
    )
    worker.add_task("web_targets:noop", "interval", hours=1, id="hourly", name="Hourly")
    worker.add_task("web_targets:fail", "interval", hours=1, id="failing")
    worker.start()
    app = admin_app(url, token="web-admin-token", **options)
    admin = app.state.admin_target
    try:
        with serve(app) as base, httpx.Client(base_url=base, headers=ADMIN, timeout=20) as http:
            info = http.get("/api/scheduler").json()
            assert info["identity"].startswith("admin:")
            assert info["state"] == "paused"
            assert sorted(t["id"] for t in http.get("/api/tasks").json()["tasks"]) == [
                "failing",
                "hourly",
            ]

            run_id = http.post("/api/tasks/hourly/run").json()["run_id"]
            wait_for(
                lambda: (
                    [r["outcome"] for r in http.get("/api/runs?task=hourly").json()["runs"]]
                    == ["success"]
                )
            )
            run = http.get(f"/api/runs/{quote(run_id, safe='')}").json()
            assert run["scheduler"] == "web-worker-1"

            failed_id = http.post("/api/tasks/failing/run").json()["run_id"]
            wait_for(lambda: http.get("/api/runs?outcome=error").json()["runs"])
            failed = http.get(f"/api/runs/{quote(failed_id, safe='')}").json()
            assert "RuntimeError" in failed["traceback"]
            page = http.get(f"/runs/{quote(failed_id, safe='')}")
            assert "&lt;script&gt;alert(&#39;traceback&#39;)&lt;/script&gt;" in page.text
            assert "<script>alert(" not in page.text

            if url.startswith(("sqlite", "postgresql", "redis")):  # stores that elect
                wait_for(lambda: worker.is_leader)
            members = http.get("/api/fleet").json()
            assert [m["identity"] for m in members] == ["web-worker-1"]
            assert members[0]["recent_runs"] == 2
            fleet_page = http.get("/fleet").text
            assert "web-worker-1" in fleet_page
            # The leader, read from the store's term (the admin itself never stands).
            if worker.is_leader:
                generation = worker.leader_generation
                assert (members[0]["is_leader"], members[0]["leader_generation"]) == (
                    True,
                    generation,
                )
                assert f"yes (term {generation})" in fleet_page
            else:
                assert not url.startswith(("sqlite", "postgresql", "redis"))
                assert members[0]["is_leader"] is False

            http.post("/api/tasks/hourly/pause").raise_for_status()
            wait_for(lambda: worker.get_task("hourly").next_run_time is None)  # type: ignore[union-attr]
            answer = http.post(
                "/api/tasks/hourly/reschedule", json={"trigger": "cron", "args": {"hour": 99}}
            )
            assert (answer.status_code, answer.json()["field"]) == (422, "hour")
            http.post("/api/tasks/failing/delete").raise_for_status()
            wait_for(lambda: [t.id for t in worker.get_tasks()] == ["hourly"])
        # The app's lifespan shut the admin scheduler down with the server.
        assert not admin.running
    finally:
        worker.shutdown()
        if admin.running:
            admin.shutdown()
