"""The admin app's task list at 100,000 tasks on SQLite: how long a page takes to load
over HTTP (uvicorn on 127.0.0.1), browsing, deep in the list, and searching.

Run: ``.venv/bin/python bench/dashboard_page.py [--tasks 100000]``."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url
from tickwork.tasks import Task
from tickwork.web import admin_app

TOKEN = "bench-admin-token"


def noop() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'tasks.db'}"
        seed = BackgroundScheduler(stores={"default": store_from_url(url)})
        seed.start(paused=True)
        seed.add_tasks(
            Task(f"{__name__}:noop", "interval", id=f"task-{i:06d}", hours=1 + i % 24)
            for i in range(options.tasks)
        )
        seed.shutdown()
        app = admin_app(url, token=TOKEN)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            for path in ("/", "/?offset=50000", "/?q=task-09999", "/api/tasks?limit=50"):
                times = []
                for _ in range(options.repeat):
                    started = time.perf_counter()
                    http.get(path).raise_for_status()
                    times.append(time.perf_counter() - started)
                print(f"{path:24} median {statistics.median(times) * 1000:7.1f} ms", flush=True)
        server.should_exit = True
        thread.join()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
