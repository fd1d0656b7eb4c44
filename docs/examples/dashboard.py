"""The admin app: mounted in a Starlette (or FastAPI) app, and from a store URL alone.
(Requests go through httpx's ASGI transport here; under uvicorn they come from a
browser or ``curl``.)"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url
from tickwork.web import admin_app


def send_report() -> None:
    print("report sent")


async def mounted() -> None:
    scheduler = BackgroundScheduler()
    scheduler.add_task(send_report, "cron", hour=6, id="report")
    scheduler.start()

    token = os.environ.get("ADMIN_TOKEN", "change-me-please")
    app = Starlette(routes=[Mount("/admin", scheduler.admin_app(token=token))])

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/admin/api/tasks")).status_code == 401  # never open
        print((await client.get("/admin/api/tasks", headers=auth)).json()["total"])  # 1
        await client.post("/admin/api/tasks/report/pause", headers=auth)
        answer = await client.post(
            "/admin/api/tasks/report/reschedule",
            json={"trigger": "cron", "args": {"hour": 25}},
            headers=auth,
        )
        print(answer.status_code, answer.json()["field"])  # 422 hour
    assert scheduler.get_task("report").next_run_time is None  # type: ignore[union-attr]
    scheduler.shutdown()


async def store_only(url: str) -> None:
    worker = BackgroundScheduler(stores={"default": store_from_url(url)})
    worker.add_task(f"{__name__}:send_report", "cron", hour=6, id="report")
    worker.start(paused=True)  # a fleet member (normally another process)

    app = admin_app(url, token="change-me-please", read_only_token="look-dont-touch")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),  # a server runs it: closes the admin scheduler
        httpx.AsyncClient(transport=transport, base_url="http://local") as client,
    ):
        reader = {"Authorization": "Bearer look-dont-touch"}
        print((await client.get("/api/tasks/report", headers=reader)).json()["paused"])  # False
        print((await client.post("/api/tasks/report/pause", headers=reader)).status_code)  # 403
    worker.shutdown()


if __name__ == "__main__":
    asyncio.run(mounted())
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(store_only(f"sqlite:///{Path(directory) / 'tasks.db'}"))
