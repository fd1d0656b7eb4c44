"""grelmicro's task-router example, as a tickwork program.

grelmicro declares tasks on a ``TaskRouter`` with ``@router.interval(seconds=5)`` and
hands the router to its task manager, which runs inside a FastAPI lifespan. In tickwork
the router is the same idea, the scheduler takes its place, and the lifespan is
``async with scheduler``. Run it: ``PYTHONPATH=. python docs/examples/routers_grelmicro.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tickwork import AsyncIOScheduler, TaskRouter

# tasks.py
router = TaskRouter()
greetings: list[str] = []


@router.interval(seconds=0.1)  # grelmicro's example says seconds=5; shortened to run here
async def my_task() -> None:
    greetings.append("Hello, World!")


# main.py
scheduler = AsyncIOScheduler()
scheduler.include_router(router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with scheduler:  # started with the app, shut down with it
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/greetings")
async def count_greetings() -> dict[str, int]:
    return {"greetings": len(greetings)}


async def main() -> None:
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await asyncio.sleep(0.35)
            response = await client.get("/greetings")
    assert response.json()["greetings"] >= 3
    assert not scheduler.running


if __name__ == "__main__":
    asyncio.run(main())
    print("ok: grelmicro's router, in tickwork")
