"""The admin app: a JSON API and a dashboard for a scheduler, or for a store a fleet runs
(the ``tickwork[web]`` extra: Starlette and Jinja2).

    app = scheduler.admin_app(token=os.environ["ADMIN_TOKEN"])     # an ASGI app
    api.mount("/admin", app)                                       # FastAPI / Starlette

    app = admin_app("postgresql://db/app", token=...)              # administer a store

Endpoints (JSON, under ``/api``; pages at ``/``, ``/tasks/ID``, ``/runs/ID``, ``/fleet``):

* ``GET /api/scheduler`` (info and fleet), ``GET /api/fleet``;
* ``GET /api/tasks?q=&state=all|paused|active&offset=&limit=``, ``GET /api/tasks/ID``,
  ``GET /api/tasks/ID/preview?count=N`` (next run times, DST changes marked);
* ``GET /api/runs?task=&outcome=&since=&limit=``, ``GET /api/runs/RUN_ID``;
* ``POST /api/tasks/ID/pause|resume|run|delete``, ``DELETE /api/tasks/ID``,
  ``POST /api/tasks/ID/reschedule`` with ``{"trigger": "cron", "args": {"hour": 6}}``,
  ``POST /api/runs/RUN_ID/cancel``.

Errors are JSON ``{"error": ...}``: 401 without a valid token, 403 for a read-only one
(or a missing CSRF token), 404 for an unknown id, 422 for bad input (with ``"field"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickwork.exceptions import MissingDependencyError

for _module in ("starlette", "jinja2"):
    try:
        __import__(_module)
    except ImportError:
        raise MissingDependencyError(
            _module, "tickwork.web (the admin app)", "pip install 'tickwork[web]'"
        ) from None

from tickwork.web._auth import Access, AuthCallable, Guard  # noqa: E402

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp

    from tickwork.admin import AdminTarget

__all__ = ["Access", "AuthCallable", "admin_app"]


def admin_app(
    target: AdminTarget | str,
    *,
    token: str | None = None,
    read_only_token: str | None = None,
    auth: AuthCallable | None = None,
    read_only: bool = False,
    title: str = "tickwork",
    page_size: int = 50,
    refresh_seconds: float = 5.0,
    metrics_app: ASGIApp | None = None,
    **store_options: Any,
) -> Starlette:
    """The admin app (a Starlette ASGI app) for ``target``: a scheduler (running, or
    started by the application), or a store URL (see
    :func:`~tickwork.stores.store_from_url`, with ``store_options`` such as
    ``tablename``), which it administers through :func:`~tickwork.admin.open_admin`
    and shuts down with the app's lifespan.

    Access: ``token`` may read and act, ``read_only_token`` only read (each sent as
    ``Authorization: Bearer <token>``, or typed into the dashboard's login form);
    ``auth(request)`` returns ``"admin"``, ``"read"`` or ``None`` (may be async), for
    an application's own sessions. One of them is required: the app is never open by
    default. ``read_only=True`` makes every access read-only.

    ``metrics_app`` (an ASGI app, such as a Prometheus exporter) is mounted at
    ``/metrics`` behind the same check."""
    from tickwork.web._app import AdminApp

    guard = Guard(token, read_only_token, auth, read_only)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 200:
        from tickwork.exceptions import ConfigurationError

        raise ConfigurationError(f"page_size must be an integer from 1 to 200, got {page_size!r}")
    if not isinstance(refresh_seconds, int | float) or refresh_seconds < 0.2:
        from tickwork.exceptions import ConfigurationError

        raise ConfigurationError(f"refresh_seconds must be >= 0.2, got {refresh_seconds!r}")
    on_shutdown = None
    if isinstance(target, str):
        from tickwork.admin import open_admin

        scheduler = open_admin(target, **store_options)
        target, on_shutdown = scheduler, scheduler.shutdown
    elif store_options:
        from tickwork.exceptions import ConfigurationError

        raise ConfigurationError(
            f"store options {sorted(store_options)} apply only to a store URL target"
        )
    builder = AdminApp(
        target,
        guard,
        title=title,
        page_size=page_size,
        refresh_seconds=float(refresh_seconds),
        metrics_app=metrics_app,
        on_shutdown=on_shutdown,
    )
    return builder.build()
