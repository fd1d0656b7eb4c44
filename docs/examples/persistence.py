"""Persistence: tasks in a SQLite file survive a restart; what can't be stored is refused
where it is added."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tickwork import AsyncIOScheduler
from tickwork.exceptions import SerializationError

runs: list[str] = []


def send_digest(team: str) -> None:
    """A module-level function: stored as the reference "module:send_digest"."""
    runs.append(team)


async def main(directory: Path) -> None:
    url = f"sqlite:///{directory / 'tasks.sqlite'}"

    # First run of the program: schedule a task in the SQLite store.
    scheduler = AsyncIOScheduler(stores={"default": {"type": "sqlalchemy", "url": url}})
    async with scheduler:
        scheduler.add_task(
            send_digest, "interval", seconds=0.2, args=["ops"], id="digest", replace_existing=True
        )
        try:
            scheduler.add_task(lambda: None, "interval", seconds=1)
        except SerializationError as error:
            print(f"refused: {error}")  # names the task, the value, and the way out
        await asyncio.sleep(0.5)
    first_runs = len(runs)

    # The program restarts: a new scheduler on the same file finds the task and goes on.
    scheduler = AsyncIOScheduler(stores={"default": {"type": "sqlalchemy", "url": url}})
    async with scheduler:
        assert [task.id for task in scheduler.get_tasks()] == ["digest"]
        await asyncio.sleep(0.5)
    assert first_runs >= 1
    assert len(runs) > first_runs


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(Path(tmp)))
print("runs:", len(runs))
