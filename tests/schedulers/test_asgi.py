"""The ASGI lifespan wrapper, driven by hand-written ``receive``/``send`` callables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tickwork.executors.asyncio import AsyncIOExecutor
from tickwork.schedulers import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BaseScheduler,
    NativeAsyncIOScheduler,
)
from tickwork.schedulers.asgi import LifespanWrapper
from tickwork.stores.memory import MemoryStore

Message = dict[str, Any]

SCHEDULER_TYPES: list[Callable[..., BaseScheduler]] = [
    AsyncIOScheduler,
    NativeAsyncIOScheduler,
    BackgroundScheduler,
]


class Channel:
    """A server's side of one ASGI connection: queued messages in, sent messages recorded."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        for message in incoming:
            self.incoming.put_nowait(message)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))

    def sent_types(self) -> list[str]:
        return [message["type"] for message in self.sent]


STARTUP: Message = {"type": "lifespan.startup"}
SHUTDOWN: Message = {"type": "lifespan.shutdown"}


async def run_lifespan(app: Any, channel: Channel) -> None:
    await asyncio.wait_for(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, channel.receive, channel.send), 5
    )


async def not_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError(f"the wrapped app must not see {scope['type']!r} scopes here")


async def ensure_stopped(scheduler: BaseScheduler) -> None:
    if scheduler.running:
        await scheduler.shutdown_async()


class FailingStore(MemoryStore):
    """A store whose database is down."""

    def start(self, alias: str) -> None:
        raise ConnectionError("database at db.example:5432 refused the connection")


class StuckExecutor(AsyncIOExecutor):
    """An executor that cannot shut down properly."""

    async def shutdown_async(self, wait: bool = True) -> None:
        await super().shutdown_async(wait)
        raise RuntimeError("worker did not stop")


# -- the wrapper answers the lifespan protocol itself ----------------------------------------


@pytest.mark.parametrize("scheduler_type", SCHEDULER_TYPES)
async def test_startup_and_shutdown_complete(scheduler_type: Callable[..., BaseScheduler]) -> None:
    scheduler = scheduler_type()
    app = LifespanWrapper(scheduler, not_called)
    channel = Channel(STARTUP)
    running_at_startup: list[bool] = []

    async def record_then_shutdown() -> None:
        while not channel.sent:
            await asyncio.sleep(0.01)
        running_at_startup.append(scheduler.running)
        channel.incoming.put_nowait(SHUTDOWN)

    try:
        await asyncio.gather(run_lifespan(app, channel), record_then_shutdown())
    finally:
        await ensure_stopped(scheduler)

    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert running_at_startup == [True]
    assert not scheduler.running


async def test_startup_failed_carries_the_error_text() -> None:
    scheduler = AsyncIOScheduler(stores={"default": FailingStore()})
    channel = Channel(STARTUP)

    await run_lifespan(LifespanWrapper(scheduler, not_called), channel)

    assert channel.sent_types() == ["lifespan.startup.failed"]
    assert channel.sent[0]["message"] == (
        "ConnectionError: database at db.example:5432 refused the connection"
    )
    assert not scheduler.running


async def test_shutdown_failed_carries_the_error_text() -> None:
    scheduler = AsyncIOScheduler(executors={"default": StuckExecutor()})
    channel = Channel(STARTUP, SHUTDOWN)

    await run_lifespan(LifespanWrapper(scheduler, not_called), channel)

    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert channel.sent[1]["message"] == "RuntimeError: worker did not stop"
    assert not scheduler.running


async def test_shutdown_of_a_scheduler_stopped_meanwhile_completes() -> None:
    scheduler = AsyncIOScheduler()
    channel = Channel(STARTUP)
    app = LifespanWrapper(scheduler, not_called)

    async def stop_then_shutdown() -> None:
        while not channel.sent:
            await asyncio.sleep(0.01)
        await scheduler.shutdown_async()  # e.g. the app stopped it itself
        channel.incoming.put_nowait(SHUTDOWN)

    await asyncio.gather(run_lifespan(app, channel), stop_then_shutdown())

    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_shutdown_tasks_run_before_shutdown_complete() -> None:
    scheduler = AsyncIOScheduler()
    order: list[str] = []

    async def farewell() -> None:
        await asyncio.sleep(0.05)
        order.append("farewell")

    scheduler.add_task(farewell, "shutdown")
    channel = Channel(STARTUP, SHUTDOWN)
    original_send = channel.send

    async def send(message: Any) -> None:
        order.append(message["type"])
        await original_send(message)

    channel.send = send  # type: ignore[method-assign]
    await run_lifespan(LifespanWrapper(scheduler, not_called), channel)

    assert order == ["lifespan.startup.complete", "farewell", "lifespan.shutdown.complete"]


# -- other scopes go to the app ----------------------------------------------------------------


async def test_http_and_websocket_scopes_pass_through_untouched() -> None:
    scheduler = AsyncIOScheduler()
    seen: list[tuple[dict[str, Any], Any, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    app = LifespanWrapper(scheduler, inner)
    for kind in ("http", "websocket"):
        channel = Channel()
        scope = {"type": kind, "path": "/"}
        await app(scope, channel.receive, channel.send)
        assert seen[-1] == (scope, channel.receive, channel.send)
    assert not scheduler.running


async def test_requests_reach_a_starlette_app() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    scheduler = AsyncIOScheduler()
    app = scheduler.asgi(Starlette(routes=[Route("/", hello)]))
    channel = Channel({"type": "http.request", "body": b"", "more_body": False})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }

    await app(scope, channel.receive, channel.send)

    assert channel.sent[0]["type"] == "http.response.start"
    assert channel.sent[0]["status"] == 200
    assert channel.sent[1]["body"] == b"hello"


# -- handle_lifespan=True: the app keeps its own lifespan ----------------------------------------


def starlette_with_lifespan(scheduler: BaseScheduler, log: list[str]) -> Starlette:
    async def warm_cache() -> None:
        log.append("task added during app startup ran")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.append(f"app startup (scheduler running: {scheduler.running})")
        scheduler.add_task(warm_cache)  # before the scheduler starts: pending until then
        yield
        log.append(f"app shutdown (scheduler running: {scheduler.running})")

    return Starlette(lifespan=lifespan)


async def test_handle_lifespan_forwards_to_the_apps_own_lifespan() -> None:
    scheduler = AsyncIOScheduler()
    log: list[str] = []
    app = scheduler.asgi(starlette_with_lifespan(scheduler, log), handle_lifespan=True)
    channel = Channel(STARTUP)
    running_after_startup: list[bool] = []

    async def shutdown_after_startup() -> None:
        while not channel.sent:
            await asyncio.sleep(0.01)
        running_after_startup.append(scheduler.running)
        await asyncio.sleep(0.05)  # let the task added during startup run
        channel.incoming.put_nowait(SHUTDOWN)

    try:
        await asyncio.gather(run_lifespan(app, channel), shutdown_after_startup())
    finally:
        await ensure_stopped(scheduler)

    # The app's startup runs first, the scheduler starts once the app reports success
    # (so the server hears startup.complete with the scheduler running), and it stops
    # before the app's shutdown code runs. The app itself answers the protocol.
    assert log == [
        "app startup (scheduler running: False)",
        "task added during app startup ran",
        "app shutdown (scheduler running: False)",
    ]
    assert running_after_startup == [True]
    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_handle_lifespan_reports_a_failed_start_as_startup_failed() -> None:
    scheduler = AsyncIOScheduler(stores={"default": FailingStore()})
    log: list[str] = []
    app = scheduler.asgi(starlette_with_lifespan(scheduler, log), handle_lifespan=True)
    channel = Channel(STARTUP)

    lifespan = asyncio.create_task(run_lifespan(app, channel))
    try:
        while not channel.sent and not lifespan.done():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # nothing else may follow
        sent = channel.sent_types()
    finally:
        # After startup.failed a server sends nothing more and the app waits for ever;
        # a server exiting then drops the app (cancelling it makes Starlette report a
        # shutdown failure, which is not what is under test).
        lifespan.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifespan

    assert sent == ["lifespan.startup.failed"]
    assert channel.sent[0]["message"] == (
        "ConnectionError: database at db.example:5432 refused the connection"
    )
    assert not scheduler.running


async def test_handle_lifespan_reports_a_failed_shutdown_as_shutdown_failed() -> None:
    scheduler = AsyncIOScheduler(executors={"default": StuckExecutor()})
    log: list[str] = []
    app = scheduler.asgi(starlette_with_lifespan(scheduler, log), handle_lifespan=True)
    channel = Channel(STARTUP, SHUTDOWN)

    await run_lifespan(app, channel)

    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert channel.sent[1]["message"] == "RuntimeError: worker did not stop"
    assert log[-1] == "app shutdown (scheduler running: False)"  # the app's shutdown still ran


# -- the decorator forms ---------------------------------------------------------------------------


async def test_decorator_without_arguments() -> None:
    scheduler = AsyncIOScheduler()

    @scheduler.asgi
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("lifespan is answered by the wrapper")

    assert isinstance(app, LifespanWrapper)
    assert app.scheduler is scheduler
    assert not app.handle_lifespan
    channel = Channel(STARTUP, SHUTDOWN)
    await run_lifespan(app, channel)
    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_decorator_with_handle_lifespan() -> None:
    scheduler = AsyncIOScheduler()
    log: list[str] = []

    @scheduler.asgi(handle_lifespan=True)  # type: ignore[untyped-decorator]
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        log.append(f"{message['type']} (scheduler running: {scheduler.running})")
        await send({"type": "lifespan.startup.complete"})
        log.append(f"startup reported (scheduler running: {scheduler.running})")
        message = await receive()
        log.append(f"{message['type']} (scheduler running: {scheduler.running})")
        await send({"type": "lifespan.shutdown.complete"})

    assert isinstance(app, LifespanWrapper)
    channel = Channel(STARTUP, SHUTDOWN)
    try:
        await run_lifespan(app, channel)
    finally:
        await ensure_stopped(scheduler)

    assert log == [
        "lifespan.startup (scheduler running: False)",
        "startup reported (scheduler running: True)",
        "lifespan.shutdown (scheduler running: False)",
    ]
    assert channel.sent_types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
