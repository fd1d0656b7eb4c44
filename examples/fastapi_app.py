"""A FastAPI app with a scheduler that lives exactly as long as the app.

``scheduler.asgi(api)`` wraps the app: the scheduler starts on the server's
``lifespan.startup`` and shuts down on ``lifespan.shutdown`` (so the shutdown-trigger
task below runs when you stop the server with Ctrl-C).

Run: ``uvicorn fastapi_app:app --app-dir examples`` (or ``python examples/fastapi_app.py``),
then ``curl localhost:8000/count`` and ``curl -X POST 'localhost:8000/tasks?seconds=1'``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tickwork import AsyncIOScheduler

scheduler = AsyncIOScheduler()
api = FastAPI(title="tickwork example")
state = {"count": 0, "pings": 0}


@scheduler.add_task(trigger="interval", seconds=0.2, id="increment")
async def increment() -> None:
    """Runs on the server's event loop every 0.2 s."""
    state["count"] += 1


@scheduler.add_task(trigger="shutdown", id="farewell")
async def farewell() -> None:
    print(f"scheduler shutting down; count reached {state['count']}", flush=True)


async def ping() -> None:
    state["pings"] += 1


@api.get("/count")
async def count() -> dict[str, int]:
    return {"count": state["count"], "pings": state["pings"]}


@api.post("/tasks")
async def add_task(seconds: float = 1.0) -> dict[str, Any]:
    """Schedule one more task while the app runs."""
    task = scheduler.add_task(ping, "interval", seconds=seconds)
    return {"id": task.id, "next_run_time": task.next_run_time}


@api.get("/tasks")
async def list_tasks() -> list[dict[str, Any]]:
    return [{"id": t.id, "name": t.name, "trigger": repr(t.trigger)} for t in scheduler.get_tasks()]


app = scheduler.asgi(api)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
