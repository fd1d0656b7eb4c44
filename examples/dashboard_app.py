"""A FastAPI app with a scheduler and its admin dashboard mounted at ``/admin``.

The dashboard needs a token: set ``TICKWORK_ADMIN_TOKEN`` (at least 8 characters), or a
random one is made and printed for local use. Open http://127.0.0.1:8000/admin/, type
the token, and pause, resume or run the tasks; the JSON API is under ``/admin/api``
(``curl -H "Authorization: Bearer $TOKEN" localhost:8000/admin/api/tasks``).

Run: ``uvicorn dashboard_app:app --app-dir examples`` (or ``python examples/dashboard_app.py``).
Needs ``pip install 'tickwork[web]' fastapi uvicorn``.
"""

from __future__ import annotations

import os
import random
import secrets

from fastapi import FastAPI

from tickwork import AsyncIOScheduler

scheduler = AsyncIOScheduler()
api = FastAPI(title="tickwork dashboard example")
state = {"reports": 0, "syncs": 0}


@scheduler.add_task(trigger="interval", seconds=2, id="heartbeat", name="Heartbeat")
async def heartbeat() -> None:
    """Runs on the server's event loop every 2 s."""


@scheduler.add_task(trigger="cron", hour=6, id="report", name="Daily report")
def daily_report() -> None:
    """A sync task (in a worker thread), once a day; "Run now" runs it at once."""
    state["reports"] += 1


@scheduler.add_task(trigger="interval", minutes=5, id="sync", name="Sync invoices")
def sync_invoices() -> None:
    """Fails now and then: its failed runs show their traceback in the dashboard."""
    state["syncs"] += 1
    if random.random() < 0.3:
        raise ConnectionError("the invoice service did not answer")


@api.get("/state")
async def get_state() -> dict[str, int]:
    return state


token = os.environ.get("TICKWORK_ADMIN_TOKEN") or secrets.token_urlsafe(16)
if "TICKWORK_ADMIN_TOKEN" not in os.environ:
    print(f"admin dashboard token (set TICKWORK_ADMIN_TOKEN to choose one): {token}", flush=True)
api.mount("/admin", scheduler.admin_app(token=token, title="tickwork example"))
app = scheduler.asgi(api)

if __name__ == "__main__":
    import uvicorn

    print("dashboard: http://127.0.0.1:8000/admin/", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=8000)
