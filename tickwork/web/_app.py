"""The admin app: JSON endpoints under ``/api`` and the dashboard's pages, one Starlette
app over an :class:`~tickwork.admin.AdminTarget`.

Every scheduler call does store I/O, so it runs in a worker thread, never on the event
loop (the target may be an application's scheduler running on that same loop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tickwork.admin import fleet_members
from tickwork.exceptions import TaskLookupError
from tickwork.web import _data
from tickwork.web._actions import TASK_ACTIONS, cancel, task_action
from tickwork.web._auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    Access,
    Guard,
    csrf_problem,
    new_csrf_token,
)
from tickwork.web._data import BadInput, RunLookupError

if TYPE_CHECKING:
    from tickwork.admin import AdminTarget

__all__ = ["AdminApp"]

T = TypeVar("T")
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_MAX_BODY = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class AdminApp:
    """Builds the Starlette app; holds the target, the guard and the templates."""

    def __init__(
        self,
        target: AdminTarget,
        guard: Guard,
        *,
        title: str,
        page_size: int,
        refresh_seconds: float,
        metrics_app: ASGIApp | None,
        on_shutdown: Callable[[], None] | None,
    ) -> None:
        self.target = target
        self.guard = guard
        self.title = title
        self.page_size = page_size
        self.refresh_seconds = refresh_seconds
        self.on_shutdown = on_shutdown
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("tickwork.web", "templates"),
            autoescape=True,  # task names, arguments and tracebacks are data, never markup
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["q"] = lambda value: quote(str(value), safe="")
        self.templates.filters["when"] = _when
        self.static = {
            name: (files("tickwork.web").joinpath("static", name).read_bytes(), kind)
            for name, kind in _STATIC.items()
        }
        self.metrics_app = metrics_app

    def build(self) -> Starlette:
        """The Starlette app."""
        routes: list[Route | Mount] = [
            Route("/api/scheduler", self.api_scheduler),
            Route("/api/fleet", self.api_fleet),
            Route("/api/tasks", self.api_tasks),
            Route("/api/tasks/{task_id:path}/preview", self.api_preview),
            Route("/api/tasks/{task_id:path}/{action}", self.api_task_action, methods=["POST"]),
            Route("/api/tasks/{task_id:path}", self.api_task, methods=["GET", "DELETE"]),
            Route("/api/runs", self.api_runs),
            Route("/api/runs/{run_id:path}/cancel", self.api_cancel, methods=["POST"]),
            Route("/api/runs/{run_id:path}", self.api_run),
            Route("/", self.page_tasks),
            Route("/fleet", self.page_fleet),
            Route("/events", self.events),
            Route("/login", self.page_login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/{name}", self.static_file),
            Route("/tasks/{task_id:path}/{action}", self.form_task_action, methods=["POST"]),
            Route("/tasks/{task_id:path}", self.page_task),
            Route("/runs/{run_id:path}/cancel", self.form_cancel, methods=["POST"]),
            Route("/runs/{run_id:path}", self.page_run),
        ]
        if self.metrics_app is not None:
            routes.insert(0, Route("/metrics", _Guarded(self.metrics_app, self.guard)))
        app = Starlette(routes=routes, lifespan=self._lifespan)
        app.state.admin_target = self.target
        return app

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        if self.on_shutdown is not None:
            await run_in_threadpool(self.on_shutdown)

    # -- plumbing ----------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(target, *args)`` in a worker thread."""
        return await run_in_threadpool(fn, self.target, *args)

    async def require(self, request: Request, needed: Access) -> Access:
        access = await self.guard.access(request)
        if access is None:
            raise _Refused(401, "not authenticated: send Authorization: Bearer <token>")
        if needed == "admin" and access != "admin":
            raise _Refused(403, "this token is read-only: it cannot change anything")
        return access

    async def form(self, request: Request) -> dict[str, str]:
        """The urlencoded form of a POST (a JSON body gives ``{}`` here)."""
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return {}
        body = await _body(request)
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    async def check_action(self, request: Request, form: dict[str, str]) -> None:
        await self.require(request, "admin")
        problem = csrf_problem(request, form)
        if problem is not None:
            raise _Refused(403, problem)

    # -- JSON API ----------------------------------------------------------------------

    async def api(self, request: Request, needed: Access, work: Callable[[], Any]) -> Response:
        try:
            if needed == "admin":
                await self.check_action(request, await self.form(request))
            else:
                await self.require(request, needed)
            return JSONResponse(await work())
        except BaseException as exc:
            return _json_error(exc)

    async def api_scheduler(self, request: Request) -> Response:
        async def work() -> Any:
            info = await self.call(lambda t: t.get_scheduler_info())
            info["fleet"] = await self.call(fleet_members)
            return _jsonable(info)

        return await self.api(request, "read", work)

    async def api_fleet(self, request: Request) -> Response:
        return await self.api(request, "read", partial(self.call, fleet_members))

    async def api_tasks(self, request: Request) -> Response:
        async def work() -> Any:
            page = await self.task_page(request)
            return {"tasks": page.rows, "total": page.total, "offset": page.offset,
                    "limit": page.limit}  # fmt: skip

        return await self.api(request, "read", work)

    async def task_page(self, request: Request) -> _data.TaskPage:
        params = request.query_params
        offset, limit = _data.page_bounds(params.get("offset"), params.get("limit"), self.page_size)
        search, state = params.get("q", ""), params.get("state", "all")
        return await self.call(_data.task_page, search, state, offset, limit)

    async def api_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if request.method == "DELETE":
            return await self.api(
                request, "admin", partial(self.call, task_action, task_id, "delete", {})
            )

        async def work() -> Any:
            task = await self.call(_data.get_task, task_id)
            return _data.task_row(task)

        return await self.api(request, "read", work)

    async def api_preview(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]

        async def work() -> Any:
            raw = request.query_params.get("count")
            count = _data._int_field("count", raw, 10, 1, _data.MAX_PREVIEW)
            await self.call(_data.get_task, task_id)
            return {
                "task_id": task_id,
                "next_run_times": await self.call(_data.preview, task_id, count),
            }

        return await self.api(request, "read", work)

    async def api_task_action(self, request: Request) -> Response:
        task_id, action = request.path_params["task_id"], request.path_params["action"]

        async def work() -> Any:
            if action not in TASK_ACTIONS:
                raise TaskLookupError(f"{task_id}/{action}")
            body = await _json_body(request) if action == "reschedule" else {}
            return await self.call(task_action, task_id, action, body)

        return await self.api(request, "admin", work)

    async def api_runs(self, request: Request) -> Response:
        params = request.query_params

        async def work() -> Any:
            runs = await self.call(
                _data.query_runs,
                params.get("task"),
                params.get("outcome"),
                params.get("since"),
                params.get("limit"),
            )
            return {"runs": [_data.run_json(r) for r in runs]}

        return await self.api(request, "read", work)

    async def api_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        async def work() -> Any:
            return _data.run_json(await self.call(_data.find_run, run_id))

        return await self.api(request, "read", work)

    async def api_cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return await self.api(request, "admin", partial(self.call, cancel, run_id))

    # -- pages -------------------------------------------------------------------------

    async def page(
        self, request: Request, template: str, load: Callable[[], Any], status: int = 200
    ) -> Response:
        """Render ``template`` with what ``load()`` returns, for a reader; the login form
        (401) for anyone else; a page of its own for bad input and unknown ids."""
        context = self.context(request)
        try:
            context["access"] = await self.require(request, "read")
            context.update(await load())
        except _Refused as exc:
            template, status = "login.html", exc.status
            context["error"] = str(exc) if exc.status != 401 else None
            context["uses_tokens"] = self.guard.uses_tokens
        except (TaskLookupError, RunLookupError) as exc:
            template, status, context["error"] = "error.html", 404, _lookup_text(exc)
        except BadInput as exc:
            template, status, context["error"] = "error.html", 422, f"{exc.field}: {exc}"
        return self.render(request, template, context, status)

    async def page_tasks(self, request: Request) -> Response:
        async def load() -> dict[str, Any]:
            page = await self.task_page(request)
            return {"page": page, "q": request.query_params.get("q", ""),
                    "state": request.query_params.get("state", "all")}  # fmt: skip

        return await self.page(request, "tasks.html", load)

    async def page_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]

        async def load() -> dict[str, Any]:
            task = await self.call(_data.get_task, task_id)
            runs = await self.call(_data.query_runs, task_id, None, None, "50")
            return {
                "task": _data.task_row(task, runs[0] if runs else None),
                "preview": await self.call(_data.preview, task_id, 10),
                "runs": [_data.run_json(r) for r in runs],
                "timeline": _data.run_timeline(runs),
                "triggers": _editable_triggers(),
            }

        return await self.page(request, "task.html", load)

    async def page_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        async def load() -> dict[str, Any]:
            return {"run": _data.run_json(await self.call(_data.find_run, run_id))}

        return await self.page(request, "run.html", load)

    async def page_fleet(self, request: Request) -> Response:
        async def load() -> dict[str, Any]:
            info = await self.call(lambda t: t.get_scheduler_info())
            return {"info": _jsonable(info), "members": await self.call(fleet_members)}

        return await self.page(request, "fleet.html", load)

    def context(self, request: Request, **extra: Any) -> dict[str, Any]:
        """What every template gets (``csrf``: the cookie's token, or a new one)."""
        context: dict[str, Any] = {"title": self.title, "base": _base(request),
                                   "csrf": request.cookies.get(CSRF_COOKIE) or new_csrf_token(),
                                   "refresh": self.refresh_seconds, "access": None,
                                   "uses_tokens": self.guard.uses_tokens, "error": None,
                                   "message": request.query_params.get("message")}  # fmt: skip
        context.update(extra)
        return context

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        response = HTMLResponse(self.templates.get_template(template).render(context), status)
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"
        )
        response.headers["x-content-type-options"] = "nosniff"
        if request.cookies.get(CSRF_COOKIE) != context["csrf"]:
            _set_cookie(response, request, CSRF_COOKIE, context["csrf"])
        return response

    async def page_login(self, request: Request) -> Response:
        if request.method == "GET":
            if await self.guard.access(request) is not None:
                return RedirectResponse(_base(request) + "/", 303)
            return self.render(request, "login.html", self.context(request))
        form = await self.form(request)
        problem = csrf_problem(request, form)
        token = form.get("token", "")
        if problem is None and self.guard.access_of_token(token) is not None:
            response = RedirectResponse(_base(request) + "/", 303)
            _set_cookie(response, request, ACCESS_COOKIE, token)
            return response
        context = self.context(request, error=problem or "wrong token")
        return self.render(request, "login.html", context, 401)

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(_base(request) + "/login", 303)
        response.delete_cookie(ACCESS_COOKIE, path=_base(request) or "/")
        return response

    async def form_task_action(self, request: Request) -> Response:
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        form = await self.form(request)
        body: dict[str, Any] = {}

        async def work() -> str:
            await self.check_action(request, form)
            if action == "reschedule":
                body["trigger"] = form.get("trigger")
                body["args"] = _data.parse_form_args(form.get("args", ""))
            result = await self.call(task_action, task_id, action, body)
            if action == "delete" or result.get("deleted"):
                return f"/?message={quote('deleted task ' + task_id)}"
            note = {"run": "run requested", "pause": "paused", "resume": "resumed"}.get(
                action, "rescheduled"
            )
            return f"/tasks/{quote(task_id, safe='')}?message={quote(note)}"

        return await self.form_result(request, work)

    async def form_cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        form = await self.form(request)

        async def work() -> str:
            await self.check_action(request, form)
            result = await self.call(cancel, run_id)
            note = "cancelled" if result["cancelled"] else "not running: nothing to cancel"
            return f"/runs/{quote(run_id, safe='')}?message={quote(note)}"

        return await self.form_result(request, work)

    async def form_result(self, request: Request, work: Callable[[], Any]) -> Response:
        """Redirect (303) to the page ``work`` names, or show what went wrong."""
        try:
            return RedirectResponse(_base(request) + await work(), 303)
        except BaseException as exc:
            if not isinstance(exc, _Refused | TaskLookupError | RunLookupError | BadInput):
                raise
            status, text = _status_of(exc)
            name = "login.html" if status == 401 else "error.html"
            return self.render(request, name, self.context(request, error=text), status)

    async def events(self, request: Request) -> Response:
        """Server-sent events: a ``refresh`` every ``refresh_seconds``, on which the
        dashboard reloads the page's live part. Polled, not pushed: the fleet's events
        happen in other processes; what they change is seen in the store."""
        if await self.guard.access(request) is None:
            return _json_error(_Refused(401, "not authenticated"))

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 3000\n\n"
            # Bounded: the browser reconnects, and a server shutting down is not held
            # open by a dashboard left in a tab.
            for _ in range(max(1, int(120 / self.refresh_seconds))):
                await asyncio.sleep(self.refresh_seconds)
                if await request.is_disconnected():
                    return
                yield b"event: refresh\ndata: {}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store"})  # fmt: skip

    async def static_file(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        return Response(found[0], media_type=found[1],
                        headers={"cache-control": "max-age=300"})  # fmt: skip


class _Guarded:
    """An ASGI app (the metrics endpoint) behind the admin app's guard (read access)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await self.guard.access(Request(scope)) is None:
            await _json_error(_Refused(401, "not authenticated"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=_base(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise BadInput("body", f"the request body is over {_MAX_BODY} bytes")
    return body


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await _body(request) or b"{}")
    except ValueError as exc:
        raise BadInput("body", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("body", "the body must be a JSON object")
    return data


def _editable_triggers() -> list[str]:
    from tickwork.triggers import trigger_registry

    return [a for a in trigger_registry.aliases() if a not in ("and", "or", "shutdown")]


def _lookup_text(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, RunLookupError) else str(exc)


def _status_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, _Refused):
        return exc.status, str(exc)
    if isinstance(exc, TaskLookupError | RunLookupError):
        return 404, _lookup_text(exc)
    if isinstance(exc, BadInput):
        return 422, str(exc)
    raise exc


def _json_error(exc: BaseException) -> JSONResponse:
    """An error as JSON: 401/403 refused, 404 unknown id, 422 bad input naming the
    field. Anything else is not the request's fault and propagates (500)."""
    status, text = _status_of(exc)
    body: dict[str, Any] = {"error": text}
    if isinstance(exc, BadInput):
        body["field"] = exc.field
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status, headers=headers)


def _when(value: str | None) -> str:
    """An ISO time as people read it: to the second, with its UTC offset."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).isoformat(sep=" ", timespec="seconds")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
