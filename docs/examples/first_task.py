"""Getting started: add tasks three ways, look at them, pause and resume one."""

from __future__ import annotations

import asyncio

from tickwork import AsyncIOScheduler

scheduler = AsyncIOScheduler()
greetings: list[str] = []


# 1. As a decorator. Name the trigger with trigger=: the first positional argument of
#    add_task is the function.
@scheduler.add_task(trigger="interval", seconds=0.2, id="poll")
async def poll() -> None:
    greetings.append("poll")


# 2. With add_task(fn, trigger, ...): args/kwargs are checked against fn's signature.
def greet(name: str, punctuation: str = "!") -> None:
    greetings.append(f"hello {name}{punctuation}")


scheduler.add_task(greet, "date", args=["world"], id="greet-once")  # no run_at: run now

# 3. By reference, "module:function", e.g. for a task kept in a database:
scheduler.add_task("builtins:print", "interval", minutes=30, args=["half-hourly"], id="print")


async def main() -> None:
    async with scheduler:
        await asyncio.sleep(0.3)
        task = scheduler.get_task("poll")
        assert task is not None
        assert task.next_run_time is not None
        task.pause()  # next_run_time becomes None; the task stays
        paused = scheduler.get_task("poll")
        assert paused is not None
        assert paused.next_run_time is None
        polls = greetings.count("poll")
        await asyncio.sleep(0.3)
        assert greetings.count("poll") == polls  # paused: no runs
        scheduler.resume_task("poll")
        await asyncio.sleep(0.3)
        assert greetings.count("poll") > polls

        # A date task is removed once it has run; the others stay.
        assert scheduler.get_task("greet-once") is None
        assert [t.id for t in scheduler.get_tasks()] == ["poll", "print"]


asyncio.run(main())
assert "hello world!" in greetings
