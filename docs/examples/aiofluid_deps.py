"""aio-fluid's task dependencies (``deps``), as a tickwork program.

aio-fluid hands every task run a context through which the application's dependencies
are reached. In tickwork the scheduler holds the application's objects as
``resources``; a task asks for them with a parameter annotated ``TaskContext``.
Nothing of it is stored: the task stays a plain, persistable task.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tickwork import AsyncIOScheduler, TaskContext


@dataclass
class Database:
    """Stands in for a connection pool (asyncpg, SQLAlchemy...)."""

    rows: list[str] = field(default_factory=list)

    async def insert(self, row: str) -> None:
        await asyncio.sleep(0)
        self.rows.append(row)


async def record_heartbeat(ctx: TaskContext, service: str) -> None:
    # The context: the scheduler's resources, and which run this is.
    await ctx.resources.db.insert(f"{service} alive (run {ctx.run_id}, attempt {ctx.attempt})")


async def main() -> None:
    db = Database()
    scheduler = AsyncIOScheduler(resources={"db": db})
    scheduler.resources.service_name = "billing"  # resources can be added later too
    scheduler.add_task(record_heartbeat, "interval", seconds=0.1, args=["billing"])
    scheduler.start()
    await asyncio.sleep(0.5)
    await scheduler.shutdown_async()
    assert db.rows, "the task reached the database through its context"
    assert all(row.startswith("billing alive (run ") for row in db.rows), db.rows
    print(f"{len(db.rows)} heartbeats recorded")


asyncio.run(main())
