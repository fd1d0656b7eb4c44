"""Run a scheduler for the lifetime of an ASGI application (the lifespan protocol)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickwork.schedulers.base import BaseScheduler

__all__ = ["ASGIApp", "LifespanWrapper"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LifespanWrapper:
    """An ASGI app that starts ``scheduler`` on ``lifespan.startup`` and shuts it down on
    ``lifespan.shutdown``, passing every other scope to ``app``.

    By default the wrapper answers the lifespan messages itself (``app`` never sees
    them) and reports a failed start or stop with ``lifespan.startup.failed`` /
    ``lifespan.shutdown.failed`` carrying the error text, as the protocol asks. With
    ``handle_lifespan=True`` the app keeps its own lifespan handling: the scheduler starts
    before the app sees ``lifespan.startup`` and stops before it sees
    ``lifespan.shutdown``; a failure is raised into the app's lifespan handler.
    """

    def __init__(
        self, scheduler: BaseScheduler, app: ASGIApp, handle_lifespan: bool = False
    ) -> None:
        self.scheduler = scheduler
        self.app = app
        self.handle_lifespan = handle_lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
        elif self.handle_lifespan:
            await self.app(scope, self._receive_through(receive), send)
        else:
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.scheduler._start_for_asgi()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self.scheduler.running:
                        await self.scheduler.shutdown_async()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _receive_through(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.scheduler._start_for_asgi()
            elif message["type"] == "lifespan.shutdown" and self.scheduler.running:
                await self.scheduler.shutdown_async()
            return message

        return wrapped
