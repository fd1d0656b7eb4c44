"""Who may use the admin app, and how much: a token (sent as ``Authorization: Bearer``
or kept in a cookie by the dashboard's login form), a read-only token, or the
application's own check (``auth=``), and CSRF protection for state-changing requests.

Nothing is open by default: an app made without a token and without ``auth`` is refused
when it is built (:func:`check_auth_config`)."""

from __future__ import annotations

import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request

from tickwork.exceptions import ConfigurationError

__all__ = [
    "ACCESS_COOKIE",
    "CSRF_COOKIE",
    "Access",
    "AuthCallable",
    "Guard",
]

#: ``"admin"`` may read and act; ``"read"`` may only read.
Access = Literal["admin", "read"]

#: The application's own check: the access a request has, or ``None`` (refused, 401).
#: May be a coroutine function.
AuthCallable = Callable[[Request], "Access | Awaitable[Access | None] | None"]

ACCESS_COOKIE = "tickwork_admin"
CSRF_COOKIE = "tickwork_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class Guard:
    """Decides the access of each request, and whether an unsafe one carries its CSRF
    token. ``read_only`` caps every access at ``"read"``."""

    def __init__(
        self,
        token: str | None,
        read_only_token: str | None,
        auth: AuthCallable | None,
        read_only: bool,
    ) -> None:
        for name, value in (("token", token), ("read_only_token", read_only_token)):
            if value is not None and (not isinstance(value, str) or len(value) < 8):
                raise ConfigurationError(
                    f"{name} must be a string of at least 8 characters, got {value!r}"
                )
        if token is None and read_only_token is None and auth is None:
            # Nothing is open by default: an admin app anyone could reach would let anyone
            # pause, delete or run the application's tasks.
            raise ConfigurationError(
                "the admin app needs token='...', read_only_token='...' or auth=callable; "
                "it is never open to anyone by default"
            )
        if token is not None and token == read_only_token:
            raise ConfigurationError("token and read_only_token must differ")
        self.token = token
        self.read_only_token = read_only_token
        self.auth = auth
        self.read_only = read_only

    @property
    def uses_tokens(self) -> bool:
        """Whether the login form (a token in a cookie) applies."""
        return self.token is not None or self.read_only_token is not None

    async def access(self, request: Request) -> Access | None:
        """The access ``request`` has, or ``None`` when it has none."""
        granted: Access | None = None
        presented = _bearer(request) or request.cookies.get(ACCESS_COOKIE)
        if presented is not None:
            granted = self.access_of_token(presented)
        if granted is None and self.auth is not None:
            result = self.auth(request)
            if inspect.isawaitable(result):
                result = await result
            if result not in ("admin", "read", None):
                raise ConfigurationError(
                    f"the admin app's auth callable must return 'admin', 'read' or None, "
                    f"got {result!r}"
                )
            granted = result
        if granted == "admin" and self.read_only:
            return "read"
        return granted

    def access_of_token(self, presented: str) -> Access | None:
        """The access a token gives (compared in constant time), or ``None``."""
        if self.token is not None and same_secret(presented, self.token):
            return "admin"
        if self.read_only_token is not None and same_secret(presented, self.read_only_token):
            return "read"
        return None


def same_secret(presented: str, expected: str) -> bool:
    """Compare two secrets in constant time. As bytes: ``hmac.compare_digest`` refuses
    ``str`` with non-ASCII characters (``TypeError``), and a header or cookie may hold
    any (Starlette decodes headers as Latin-1), which must be a plain mismatch, not a
    server error."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def new_csrf_token() -> str:
    """A fresh CSRF token (kept in a cookie, echoed by each form)."""
    return secrets.token_urlsafe(32)


def csrf_problem(request: Request, form: dict[str, str]) -> str | None:
    """Why an unsafe request fails the CSRF check, or ``None`` when it passes.

    A request that authenticates with an ``Authorization`` header needs no CSRF token: a
    page of another site cannot make a browser send that header. Any other one (the
    dashboard's forms, authenticated by cookie or by the application's ``auth``) must
    echo the CSRF cookie in the form field ``csrf_token`` or the ``X-CSRF-Token`` header
    (a double-submitted cookie: another site can neither read nor set it), and must not
    come from another origin."""
    if _bearer(request) is not None:
        return None
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            return f"the request comes from another origin ({origin})"
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not expected or not sent or not same_secret(sent, expected):
        return "missing or wrong CSRF token: reload the page and try again"
    return None
