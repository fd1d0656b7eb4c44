"""The admin app's JSON API against a real uvicorn server and a running scheduler: every
endpoint, every action (with its event), and the errors (404, 422 naming the field)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from web_server import serve

from tickwork.events import TASK_MODIFIED, TASK_REMOVED
from tickwork.schedulers import BackgroundScheduler

ADMIN = {"Authorization": "Bearer admin-token-0001"}
NASTY = "<script>alert('x')</script>"
CALLS: list[str] = []


def record(tag: str) -> None:
    CALLS.append(tag)


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(identity="web-api-test")
    scheduler.add_task(record, "interval", hours=1, args=["a"], id="alpha", name="Alpha job")
    scheduler.add_task(record, "cron", hour=6, args=[NASTY], id="beta", name=NASTY)
    for i in range(7):
        scheduler.add_task(
            record, "interval", hours=2, args=["b"], id=f"bulk-{i}", name=f"bulk {i}"
        )
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


@pytest.fixture
def client(scheduler: BackgroundScheduler) -> Iterator[httpx.Client]:
    app = scheduler.admin_app(token="admin-token-0001", read_only_token="read-token-0001")
    with serve(app) as url, httpx.Client(base_url=url, headers=ADMIN, timeout=20) as http:
        yield http


def test_scheduler_info_and_fleet(client: httpx.Client) -> None:
    info = client.get("/api/scheduler").json()
    assert info["identity"] == "web-api-test"
    assert info["type"] == "BackgroundScheduler"
    assert info["fleet"] == []  # nothing has run yet
    assert client.get("/api/fleet").json() == []


def test_task_list_filters_and_pages(client: httpx.Client) -> None:
    everything = client.get("/api/tasks").json()
    assert everything["total"] == 9
    assert {row["id"] for row in everything["tasks"]} >= {"alpha", "beta"}

    page = client.get("/api/tasks", params={"q": "BULK", "offset": 2, "limit": 3}).json()
    assert page["total"] == 7
    assert [row["id"] for row in page["tasks"]] == ["bulk-2", "bulk-3", "bulk-4"]

    client.post("/api/tasks/alpha/pause")
    paused = client.get("/api/tasks", params={"state": "paused"}).json()
    assert [row["id"] for row in paused["tasks"]] == ["alpha"]
    active = client.get("/api/tasks", params={"state": "active"}).json()
    assert active["total"] == 8


def test_one_task_with_arguments_as_text(client: httpx.Client) -> None:
    task = client.get("/api/tasks/beta").json()
    assert task["name"] == NASTY
    assert task["args"] == repr((NASTY,))
    assert task["paused"] is False
    assert task["trigger"].startswith("CronTrigger")


def test_preview_marks_dst_changes(scheduler: BackgroundScheduler, client: httpx.Client) -> None:
    scheduler.add_task(
        record, "cron", day_of_week="sun", hour=12, timezone="Europe/Berlin", args=["n"], id="noon"
    )
    preview = client.get("/api/tasks/noon/preview", params={"count": 100}).json()
    times = preview["next_run_times"]
    assert len(times) == 100
    # 100 weeks hold Berlin's spring and autumn changes, each marked on the first run
    # after it (and nowhere else: weekly runs at noon change offset only across them).
    changes = [item["change"] for item in times if item["change"] is not None]
    assert "UTC offset +01:00 → +02:00 (daylight saving time starts)" in changes, times
    assert "UTC offset +02:00 → +01:00 (daylight saving time ends)" in changes, times
    assert 3 <= len(changes) <= 4
    assert client.get("/api/tasks/noon/preview", params={"count": 0}).status_code == 422


def test_actions_change_the_task_and_send_events(
    scheduler: BackgroundScheduler, client: httpx.Client
) -> None:
    seen: list[tuple[int, str]] = []
    scheduler.add_listener(lambda event: seen.append((event.code, event.task_id)))

    assert client.post("/api/tasks/alpha/pause").json() == {"task_id": "alpha", "action": "pause"}
    assert scheduler.get_task("alpha").next_run_time is None  # type: ignore[union-attr]
    assert client.post("/api/tasks/alpha/resume").status_code == 200
    assert scheduler.get_task("alpha").next_run_time is not None  # type: ignore[union-attr]

    answer = client.post(
        "/api/tasks/alpha/reschedule", json={"trigger": "interval", "args": {"minutes": 5}}
    )
    assert answer.status_code == 200, answer.text
    assert "0:05:00" in str(scheduler.get_task("alpha").trigger)  # type: ignore[union-attr]

    assert client.delete("/api/tasks/bulk-0").status_code == 200
    assert client.post("/api/tasks/bulk-1/delete").status_code == 200
    assert scheduler.get_task("bulk-0") is None
    assert scheduler.get_task("bulk-1") is None
    assert seen.count((TASK_MODIFIED, "alpha")) >= 3
    assert (TASK_REMOVED, "bulk-0") in seen
    assert (TASK_REMOVED, "bulk-1") in seen


def test_run_now_asks_the_scheduler_and_the_run_is_recorded(client: httpx.Client) -> None:
    CALLS.clear()
    run_id = client.post("/api/tasks/alpha/run").json()["run_id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        runs = client.get("/api/runs", params={"task": "alpha"}).json()["runs"]
        if runs and runs[0]["outcome"] == "success":
            break
        time.sleep(0.1)
    assert runs[0]["run_id"] == run_id
    assert CALLS == ["a"]
    one = client.get(f"/api/runs/{quote(run_id, safe='')}").json()
    assert one["outcome"] == "success"
    assert one["scheduler"] == "web-api-test"
    fleet = client.get("/api/fleet").json()
    assert fleet[0]["identity"] == "web-api-test"
    assert fleet[0]["is_this_process"] is True
    assert fleet[0]["recent_runs"] == 1
    assert client.get("/api/runs", params={"outcome": "error"}).json() == {"runs": []}
    since = client.get("/api/runs", params={"since": "2999-01-01T00:00:00"}).json()
    assert since == {"runs": []}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/tasks/nope", "GET"),
        ("/api/tasks/nope/preview", "GET"),
        ("/api/tasks/nope/pause", "POST"),
        ("/api/tasks/nope/resume", "POST"),
        ("/api/tasks/nope/run", "POST"),
        ("/api/tasks/nope/delete", "POST"),
        ("/api/tasks/nope", "DELETE"),
        ("/api/tasks/alpha/explode", "POST"),
        ("/api/runs/nope", "GET"),
        ("/api/runs/alpha@2026-01-01T00:00:00.000000Z#1", "GET"),
        ("/api/runs/nope/cancel", "POST"),
    ],
)
def test_unknown_ids_are_404_with_a_json_error(
    client: httpx.Client, path: str, method: str
) -> None:
    answer = client.request(method, quote(path, safe="/@:"))
    assert answer.status_code == 404, answer.text
    assert "error" in answer.json()


def test_unknown_task_in_runs_filter_is_404(client: httpx.Client) -> None:
    answer = client.get("/api/runs", params={"task": "nope"})
    assert answer.status_code == 404
    assert answer.json() == {"error": "no task with id 'nope'"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trigger": "interval", "args": {"secondz": 5}}, "secondz"),
        ({"trigger": "cron", "args": {"hour": 30}}, "hour"),
        ({"trigger": "cron", "args": {"minute": "*/0"}}, "minute"),
        ({"trigger": "tickwork.triggers.cron:CronTrigger", "args": {}}, "trigger"),
        ({"trigger": "and", "args": {}}, "trigger"),
        ({"trigger": "interval", "args": [1]}, "args"),
        ({"trigger": "interval", "args": {"seconds": {"x": 1}}}, "seconds"),
        ({"trigger": "interval", "args": {"not a name": 1}}, "args"),
    ],
)
def test_invalid_trigger_edits_are_422_naming_the_field(
    scheduler: BackgroundScheduler, client: httpx.Client, body: dict[str, object], field: str
) -> None:
    before = str(scheduler.get_task("alpha").trigger)  # type: ignore[union-attr]
    answer = client.post("/api/tasks/alpha/reschedule", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["error"]
    assert str(scheduler.get_task("alpha").trigger) == before  # type: ignore[union-attr]


def test_a_body_that_is_not_json_is_422(client: httpx.Client) -> None:
    answer = client.post(
        "/api/tasks/alpha/reschedule",
        content=b"\x80\x04\x95 pickle?",
        headers={"content-type": "application/octet-stream"},
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "body"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/tasks", {"limit": "0"}, "limit"),
        ("/api/tasks", {"limit": "500"}, "limit"),
        ("/api/tasks", {"offset": "-1"}, "offset"),
        ("/api/tasks", {"offset": "x"}, "offset"),
        ("/api/tasks", {"state": "sleeping"}, "state"),
        ("/api/runs", {"outcome": "exploded"}, "outcome"),
        ("/api/runs", {"since": "yesterday"}, "since"),
        ("/api/runs", {"limit": "100000"}, "limit"),
    ],
)
def test_bad_query_values_are_422_naming_the_field(
    client: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def test_cancel_a_running_run(scheduler: BackgroundScheduler, client: httpx.Client) -> None:
    scheduler.add_executor("processpool", "processes", max_workers=1)
    scheduler.add_task("web_targets:slow", "interval", hours=1, id="slow", executor="processes")
    run_id = client.post("/api/tasks/slow/run").json()["run_id"]
    deadline = time.monotonic() + 15
    while (
        client.get("/api/runs", params={"task": "slow", "outcome": "running"}).json()["runs"] == []
    ):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    answer = client.post(f"/api/runs/{quote(run_id, safe='')}/cancel").json()
    assert answer == {"run_id": run_id, "action": "cancel", "cancelled": True}


def test_metrics_app_is_mounted_behind_the_same_check(scheduler: BackgroundScheduler) -> None:
    async def metrics(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"tickwork_up 1\n"})  # type: ignore[operator]

    app = scheduler.admin_app(token="admin-token-0001", metrics_app=metrics)
    with serve(app) as url:
        assert httpx.get(url + "/metrics").status_code == 401
        answer = httpx.get(url + "/metrics", headers=ADMIN)
        assert answer.text == "tickwork_up 1\n"
