"""Access to the admin app, with real requests: nothing is open by default, tokens and
read-only tokens, the application's own ``auth``, ``read_only``, the login cookie and
the CSRF check on state-changing forms."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from web_server import serve

from tickwork.exceptions import ConfigurationError
from tickwork.schedulers import BackgroundScheduler
from tickwork.web import Access, admin_app

TOKEN, READ = "admin-token-0001", "read-token-0001"


def job() -> None:
    pass


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler()
    scheduler.add_task(job, "interval", hours=1, id="alpha")
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


def test_nothing_is_open_by_default(scheduler: BackgroundScheduler) -> None:
    with pytest.raises(ConfigurationError, match="never open to anyone by default"):
        scheduler.admin_app()
    with pytest.raises(ConfigurationError, match="at least 8 characters"):
        scheduler.admin_app(token="short")
    with pytest.raises(ConfigurationError, match="must differ"):
        scheduler.admin_app(token=TOKEN, read_only_token=TOKEN)
    with pytest.raises(ConfigurationError, match="page_size"):
        scheduler.admin_app(token=TOKEN, page_size=0)
    with pytest.raises(ConfigurationError, match="store URL"):
        admin_app(scheduler, token=TOKEN, tablename="x")


@pytest.mark.parametrize(
    "path", ["/", "/fleet", "/tasks/alpha", "/api/scheduler", "/api/tasks", "/events"]
)
def test_no_or_wrong_token_is_401(scheduler: BackgroundScheduler, path: str) -> None:
    with serve(scheduler.admin_app(token=TOKEN)) as url:
        for headers in ({}, bearer("wrong-token-000"), {"Authorization": "Basic abc"}):
            answer = httpx.get(url + path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert "alpha" not in answer.text
        if path.startswith("/api"):
            assert answer.json() == {
                "error": "not authenticated: send Authorization: Bearer <token>"
            }
            assert answer.headers["www-authenticate"] == "Bearer"
        else:
            assert 'name="token"' in answer.text or path == "/events"
        assert httpx.post(url + "/api/tasks/alpha/pause").status_code == 401
    assert scheduler.get_task("alpha").next_run_time is not None  # type: ignore[union-attr]


def test_a_token_with_non_ascii_characters_is_a_plain_401(
    scheduler: BackgroundScheduler,
) -> None:
    # hmac.compare_digest refuses str with non-ASCII characters: compared as text, such a
    # token was a server error (500) instead of a refusal.
    odd = "Bearer t\u00f6ken-\u00e9\u00e9\u00e9\u00e9".encode()
    with serve(scheduler.admin_app(token=TOKEN)) as url:
        assert httpx.get(url + "/api/tasks", headers={"Authorization": odd}).status_code == 401
        answer = httpx.post(
            url + "/tasks/alpha/pause",
            headers={"X-CSRF-Token": "\u00e9t\u00e9".encode(), "Cookie": "tickwork_csrf=x"},
        )
        assert answer.status_code in (401, 403)


def test_a_read_only_token_reads_but_cannot_act(scheduler: BackgroundScheduler) -> None:
    with serve(scheduler.admin_app(token=TOKEN, read_only_token=READ)) as url:
        assert httpx.get(url + "/api/tasks/alpha", headers=bearer(READ)).status_code == 200
        for path in ("pause", "run", "delete", "resume", "reschedule"):
            answer = httpx.post(url + f"/api/tasks/alpha/{path}", headers=bearer(READ))
            assert answer.status_code == 403, path
            assert "read-only" in answer.json()["error"]
        assert httpx.delete(url + "/api/tasks/alpha", headers=bearer(READ)).status_code == 403
        page = httpx.get(url + "/tasks/alpha", headers=bearer(READ)).text
        assert 'id="pause"' not in page  # no action buttons for a reader
        assert "read-only" in page
    assert scheduler.get_task("alpha") is not None


def test_read_only_mode_caps_every_token(scheduler: BackgroundScheduler) -> None:
    with serve(scheduler.admin_app(token=TOKEN, read_only=True)) as url:
        assert httpx.get(url + "/api/tasks", headers=bearer(TOKEN)).status_code == 200
        answer = httpx.post(url + "/api/tasks/alpha/pause", headers=bearer(TOKEN))
        assert answer.status_code == 403


@pytest.mark.parametrize("asynchronous", [False, True])
def test_the_applications_own_auth_callable(
    scheduler: BackgroundScheduler, asynchronous: bool
) -> None:
    def decide(request: Request) -> Access | None:
        user = request.headers.get("x-user")
        return "admin" if user == "alice" else "read" if user == "bob" else None

    async def decide_async(request: Request) -> Access | None:
        return decide(request)

    app = scheduler.admin_app(auth=decide_async if asynchronous else decide)
    with serve(app) as url:
        assert httpx.get(url + "/api/tasks").status_code == 401
        assert httpx.get(url + "/api/tasks", headers={"x-user": "bob"}).status_code == 200
        bob = httpx.post(url + "/api/tasks/alpha/pause", headers={"x-user": "bob"})
        assert bob.status_code == 403
        # Authenticated by something else than an Authorization header: a form or fetch
        # needs the CSRF token, or a page of another site could act for the user.
        alice = httpx.post(url + "/api/tasks/alpha/pause", headers={"x-user": "alice"})
        assert alice.status_code == 403
        assert "CSRF" in alice.json()["error"]
        with httpx.Client(base_url=url, headers={"x-user": "alice"}) as browser:
            csrf = csrf_of(browser.get("/tasks/alpha").text)
            answer = browser.post("/tasks/alpha/pause", data={"csrf_token": csrf})
            assert answer.status_code == 303
    assert scheduler.get_task("alpha").next_run_time is None  # type: ignore[union-attr]


def test_login_cookie_and_csrf_on_forms(scheduler: BackgroundScheduler) -> None:
    app = scheduler.admin_app(token=TOKEN, refresh_seconds=0.2)
    with serve(app) as url, httpx.Client(base_url=url) as browser:
        login = browser.get("/login")
        assert login.status_code == 200
        csrf = csrf_of(login.text)
        wrong = browser.post("/login", data={"csrf_token": csrf, "token": "nope-nope-nope"})
        assert wrong.status_code == 401
        assert "wrong token" in wrong.text
        no_csrf = browser.post("/login", data={"token": TOKEN})
        assert no_csrf.status_code == 401
        answer = browser.post("/login", data={"csrf_token": csrf, "token": TOKEN})
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie

        # Logged in: pages are shown; a form without the CSRF token is refused.
        assert browser.get("/tasks/alpha").status_code == 200
        refused = browser.post("/tasks/alpha/pause", data={})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        forged = browser.post("/tasks/alpha/pause", data={"csrf_token": "forged-value"})
        assert forged.status_code == 403
        other_site = browser.post(
            "/tasks/alpha/pause",
            data={"csrf_token": csrf},
            headers={"origin": "https://evil.example"},
        )
        assert other_site.status_code == 403
        assert "another origin" in other_site.text
        assert scheduler.get_task("alpha").next_run_time is not None  # type: ignore[union-attr]

        done = browser.post("/tasks/alpha/pause", data={"csrf_token": csrf})
        assert done.status_code == 303
        assert done.headers["location"] == "/tasks/alpha?message=paused"
        assert scheduler.get_task("alpha").next_run_time is None  # type: ignore[union-attr]

        # A script of the page may call the JSON API with the cookie, echoing the token in
        # the X-CSRF-Token header.
        assert browser.post("/api/tasks/alpha/resume").status_code == 403
        api = browser.post("/api/tasks/alpha/resume", headers={"x-csrf-token": csrf})
        assert api.status_code == 200
        assert scheduler.get_task("alpha").next_run_time is not None  # type: ignore[union-attr]

        # The live refresh's event stream, for a logged-in reader.
        with browser.stream("GET", "/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.iter_lines()
            assert next(lines) == "retry: 3000"
            assert [next(lines) for _ in range(3)] == ["", "event: refresh", "data: {}"]

        assert browser.post("/logout").status_code == 303
        assert browser.get("/").status_code == 401
