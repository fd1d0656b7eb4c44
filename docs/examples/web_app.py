"""Web apps: a scheduler that lives as long as an ASGI app (FastAPI here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette

from tickwork import AsyncIOScheduler

scheduler = AsyncIOScheduler()
api = FastAPI()
hits = {"count": 0}


@scheduler.add_task(trigger="interval", seconds=0.05)
async def count() -> None:
    hits["count"] += 1


@api.get("/count")
async def read_count() -> dict[str, int]:
    return hits


@api.post("/reports")
async def schedule_report(minutes: int) -> dict[str, Any]:
    task = scheduler.add_task(print, "interval", minutes=minutes, args=["report"])
    return {"id": task.id}


app = scheduler.asgi(api)  # starts on lifespan.startup, shuts down on lifespan.shutdown


# An app with a lifespan of its own keeps it with handle_lifespan=True: the scheduler
# starts once the app's startup code has succeeded (tasks added there are scheduled
# then) and stops before the app's shutdown code runs.
other_scheduler = AsyncIOScheduler()
seen: list[str] = []


async def warm_cache() -> None:
    seen.append("cache warmed")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    seen.append(f"app startup, scheduler running: {other_scheduler.running}")
    other_scheduler.add_task(warm_cache)  # runs once the scheduler has started
    yield
    seen.append(f"app shutdown, scheduler running: {other_scheduler.running}")


other_app = other_scheduler.asgi(Starlette(lifespan=lifespan), handle_lifespan=True)


async def serve_briefly(asgi_app: Any) -> None:
    """What `uvicorn module:app` does, in-process: start, take a few requests, stop."""
    server = uvicorn.Server(uvicorn.Config(asgi_app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    await asyncio.sleep(0.2)  # the scheduler runs its tasks meanwhile
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        if asgi_app is app:
            assert scheduler.running
            assert (await client.get("/count")).json()["count"] >= 2
            response = await client.post("/reports", params={"minutes": 15})
            assert scheduler.get_task(response.json()["id"]) is not None
    server.should_exit = True
    await serving


asyncio.run(serve_briefly(app))
assert not scheduler.running
asyncio.run(serve_briefly(other_app))
assert seen == [
    "app startup, scheduler running: False",
    "cache warmed",
    "app shutdown, scheduler running: False",
]
