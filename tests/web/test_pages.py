"""The dashboard's pages over HTTP: each page, escaping of everything a task or run
carries, 404 and 422 pages, and the app mounted under a prefix in FastAPI."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from web_server import serve

from tickwork.schedulers import BackgroundScheduler

TOKEN = "admin-token-0001"
NASTY = "<script>alert('x')</script>"


def job(value: str) -> None:
    pass


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(identity="web-pages")
    scheduler.add_task(job, "interval", hours=1, args=[NASTY], id=NASTY, name=NASTY)
    scheduler.add_task("web_targets:fail", "interval", hours=1, id="failing")
    for i in range(120):
        scheduler.add_task(job, "interval", hours=3, args=["x"], id=f"many-{i:03d}")
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


@pytest.fixture
def browser(scheduler: BackgroundScheduler) -> Iterator[httpx.Client]:
    app = scheduler.admin_app(token=TOKEN, page_size=50)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with serve(app) as url, httpx.Client(base_url=url, headers=headers, timeout=20) as client:
        yield client


def assert_escaped(page: str) -> None:
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_task_list_pages_and_searches(browser: httpx.Client) -> None:
    first = browser.get("/")
    assert first.status_code == 200
    assert_escaped(first.text)
    assert "1\u201350 of 122" in first.text
    assert 'id="next"' in first.text
    assert first.headers["content-security-policy"].startswith("default-src 'self'")
    last = browser.get("/", params={"offset": 100})
    assert "101\u2013122 of 122" in last.text
    assert 'id="next"' not in last.text
    found = browser.get("/", params={"q": "many-11"})
    assert "of 10" in found.text  # many-110 … many-119
    nothing = browser.get("/", params={"q": "<b>zzz"})
    assert "No tasks match “&lt;b&gt;zzz”" in nothing.text
    assert browser.get("/", params={"limit": "9999"}).status_code == 422


def test_task_page_shows_preview_runs_and_actions(browser: httpx.Client) -> None:
    page = browser.get(f"/tasks/{quote(NASTY, safe='')}")
    assert page.status_code == 200
    assert_escaped(page.text)
    assert "(&#34;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;,)" in page.text  # the args
    assert page.text.count('class="mono">20') >= 1
    for button in ('id="pause"', 'id="run-now"', 'id="delete"', 'id="reschedule"'):
        assert button in page.text


def test_run_page_shows_the_traceback_escaped(
    scheduler: BackgroundScheduler, browser: httpx.Client
) -> None:
    run_id = scheduler.request_run("failing")
    deadline = time.monotonic() + 15
    while not scheduler.get_runs("failing", outcome="error"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page = browser.get(f"/runs/{quote(run_id, safe='')}")
    assert page.status_code == 200
    traceback = re.search(r'<pre class="traceback" id="traceback">(.*?)</pre>', page.text, re.S)
    assert traceback, page.text
    assert "RuntimeError: &lt;script&gt;alert(&#39;traceback&#39;)&lt;/script&gt;" in traceback[1]
    assert "<script>alert" not in page.text
    cancel = browser.post(f"/runs/{quote(run_id, safe='')}/cancel")
    assert cancel.status_code == 303
    assert cancel.headers["location"].endswith("?message=not%20running%3A%20nothing%20to%20cancel")
    task_page = browser.get("/tasks/failing").text
    assert 'class="tick error"' in task_page  # the timeline
    fleet = browser.get("/fleet").text
    assert "web-pages" in fleet
    assert "(this process)" in fleet


def test_unknown_ids_and_bad_forms(browser: httpx.Client) -> None:
    assert browser.get("/tasks/nope").status_code == 404
    assert "no task with id &#39;nope&#39;" in browser.get("/tasks/nope").text
    assert browser.get("/runs/nope").status_code == 404
    assert browser.get("/static/nope.js").status_code == 404
    assert browser.post("/tasks/nope/pause").status_code == 404
    bad = browser.post("/tasks/failing/reschedule", data={"trigger": "cron", "args": "hour=99"})
    assert bad.status_code == 422
    assert "99" in bad.text
    garbled = browser.post("/tasks/failing/reschedule", data={"trigger": "cron", "args": "hour"})
    assert garbled.status_code == 422
    ok = browser.post("/tasks/failing/reschedule", data={"trigger": "cron", "args": "hour=5"})
    assert ok.status_code == 303


def test_static_files_are_served(browser: httpx.Client) -> None:
    script = browser.get("/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    assert browser.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_mounted_under_a_prefix_in_fastapi(scheduler: BackgroundScheduler) -> None:
    fastapi = pytest.importorskip("fastapi")
    api = fastapi.FastAPI()
    api.mount("/admin", scheduler.admin_app(token=TOKEN))
    with serve(api) as url, httpx.Client(base_url=url) as browser:
        login = browser.get("/admin/login")
        assert 'action="/admin/login"' in login.text
        assert 'href="/admin/static/style.css"' in login.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)[1]  # type: ignore[index]
        answer = browser.post("/admin/login", data={"csrf_token": csrf, "token": TOKEN})
        assert answer.headers["location"] == "/admin/"
        assert "Path=/admin" in answer.headers["set-cookie"]
        page = browser.get("/admin/")
        assert page.status_code == 200
        assert 'href="/admin/tasks/failing"' in page.text
        done = browser.post("/admin/tasks/failing/pause", data={"csrf_token": csrf})
        assert done.headers["location"] == "/admin/tasks/failing?message=paused"
    assert scheduler.get_task("failing").next_run_time is None  # type: ignore[union-attr]
