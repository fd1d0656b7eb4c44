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
    right after the app's own startup succeeded and stops before the app's shutdown
    runs; a failure of either is reported with the ``*.failed`` message and its text.
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
            await self._forward(scope, receive, send)
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

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the app run its own lifespan, starting the scheduler once the app's startup
        succeeded and stopping it before the app's shutdown runs.

        The scheduler starts when the app *sends* ``lifespan.startup.complete`` (not when
        it receives ``lifespan.startup``): frameworks such as Starlette call ``receive()``
        outside their error handling, so a failure raised there would never be reported;
        replacing the app's message with ``lifespan.startup.failed`` always is.
        """
        shutdown_error: list[BaseException] = []

        async def receive_through() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self.scheduler.running:
                try:
                    await self.scheduler.shutdown_async()
                except Exception as exc:
                    shutdown_error.append(exc)
            return message

        async def send_through(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await self.scheduler._start_for_asgi()
                except Exception as exc:
                    message = {"type": "lifespan.startup.failed", "message": _describe(exc)}
            elif message["type"] == "lifespan.shutdown.complete" and shutdown_error:
                message = {
                    "type": "lifespan.shutdown.failed",
                    "message": _describe(shutdown_error[0]),
                }
            await send(message)

        await self.app(scope, receive_through, send_through)
