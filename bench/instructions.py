"""Instructions per operation under callgrind: a cost that does not move with the load of
the machine, unlike seconds.

    python bench/instructions.py                  # add, run, spread; every library
    python bench/instructions.py add --n 4000     # one operation, more repetitions
    python bench/instructions.py run --lib tickwork
    python bench/instructions.py spread --lib tickwork --lib asyncio --n 500

For each operation it runs a small program twice under ``valgrind --tool=callgrind``,
once doing the operation N times and once not at all, and prints
(I(N) - I(0)) / N. The program runs on the real interpreter binary (a virtualenv's
``python`` is a symlink that valgrind follows anyway; ``sys.path`` is passed on), so
the figure is the same from run to run on the same machine and build.

* ``add``: ``add_task(fn, "interval", seconds=3600)`` on a running ``AsyncIOScheduler``
  with the memory store (``add_job`` for APScheduler 3);
* ``run``: one run of a coroutine task in a burst: N interval tasks come due at once, four
  times, on a fake clock (tickwork only: APScheduler has no clock to drive), with the run
  history off and on (on: the writing of the records counts too);
* ``spread``: one wake-up of the spread steady load (``bench/run.py``'s ``steady_spread``):
  N interval tasks of 1 s at distinct offsets (``i / N`` past each second), so every
  wake-up of the scheduler starts exactly one run. The loop runs on virtual time (its
  selector never blocks: it moves the loop's clock, and the scheduler's, to the next
  timer), so the count of wake-ups does not depend on how fast the machine is. Run
  history off; ``asyncio`` is the floor (one ``loop.call_at`` per run starting the same
  coroutine, as in ``bench/scenarios.py``'s ``steady_floor``).

Needs valgrind (Debian: ``apt-get install valgrind``); the peers come from bench/.venv
as for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: An event loop on virtual time for the ``spread`` programs: ``select(timeout)`` returns
#: at once and moves the loop's clock by ``timeout`` (kept on whole microseconds, the
#: resolution of datetimes), and ``LoopClock`` gives the scheduler that same time.
VIRTUAL_LOOP = """
import asyncio, selectors
from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 1, 1, tzinfo=UTC)

class VirtualSelector(selectors.DefaultSelector):
    def __init__(self):
        super().__init__()
        self.micros = 0

    def select(self, timeout=None):
        if timeout is None:  # waiting for a thread (shutdown's): really wait
            return super().select(None)
        self.micros = round(self.micros + timeout * 1e6)
        return super().select(0)

class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        self.selector = VirtualSelector()
        super().__init__(self.selector)

    def time(self):
        return self.selector.micros / 1e6

class LoopClock:
    def __init__(self, loop):
        self.loop = loop

    def now(self):
        return T0 + timedelta(microseconds=self.loop.selector.micros)

def run(coroutine):  # (asyncio.run takes a loop_factory only from Python 3.12)
    loop = VirtualLoop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()
"""

PROGRAMS = {
    ("add", "tickwork"): """
        import asyncio, sys
        from datetime import UTC
        from tickwork import AsyncIOScheduler

        async def job() -> None: ...

        async def main(n: int) -> None:
            scheduler = AsyncIOScheduler(timezone=UTC)
            scheduler.start()
            for _ in range(200):  # warm-up: lazy imports, first-use caches
                scheduler.add_task(job, "interval", seconds=3600)
            await asyncio.sleep(0)
            for _ in range(n):
                scheduler.add_task(job, "interval", seconds=3600)
            await asyncio.sleep(0)

        asyncio.run(main(int(sys.argv[1])))
    """,
    ("add", "apscheduler"): """
        import asyncio, sys
        from datetime import timezone
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        async def job() -> None: ...

        async def main(n: int) -> None:
            scheduler = AsyncIOScheduler(timezone=timezone.utc)
            scheduler.start()
            for _ in range(200):
                scheduler.add_job(job, "interval", seconds=3600)
            await asyncio.sleep(0)
            for i in range(n):
                scheduler.add_job(job, "interval", seconds=3600)
                if i % 100 == 0:
                    await asyncio.sleep(0)  # the wake-up each add_job queues
            await asyncio.sleep(0)

        asyncio.run(main(int(sys.argv[1])))
    """,
    ("run", "tickwork"): """
        import asyncio, sys
        from datetime import UTC, datetime, timedelta
        from tickwork import AsyncIOScheduler
        from tickwork.clock import FakeClock

        ran = 0

        async def job() -> None:
            global ran
            ran += 1

        async def main(n: int) -> None:
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            clock = FakeClock(t0)
            history = {} if sys.argv[3] == "on" else None
            scheduler = AsyncIOScheduler(timezone=UTC, clock=clock, run_history=history)
            scheduler.start()
            for _ in range(int(sys.argv[2])):
                scheduler.add_task(job, "interval", seconds=10, start_at=t0 + timedelta(seconds=10))
            for k in range(4 if n else 0):
                clock.advance(timedelta(seconds=10))
                while ran < (k + 1) * int(sys.argv[2]):
                    await asyncio.sleep(0)
            await scheduler.shutdown_async()

        asyncio.run(main(int(sys.argv[1])))
    """,
    ("spread", "tickwork"): VIRTUAL_LOOP
    + """
import sys
from tickwork import AsyncIOScheduler

async def job() -> None: ...

async def main(seconds: int, n: int) -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(timezone=UTC, clock=LoopClock(loop), run_history=None)
    scheduler.start()
    for i in range(n):
        first = T0 + timedelta(seconds=1 + i / n)
        scheduler.add_task(job, "interval", seconds=1, start_at=first)
    await asyncio.sleep(2.5 + seconds)  # 1 s to the first run, then 1 s of warm-up
    await scheduler.shutdown_async()

run(main(int(sys.argv[1]), int(sys.argv[2])))
""",
    ("spread", "asyncio"): VIRTUAL_LOOP
    + """
import sys

async def job() -> None: ...

async def main(seconds: int, n: int) -> None:
    loop = asyncio.get_running_loop()
    started = set()

    def fire(when):
        task = loop.create_task(job())
        started.add(task)
        task.add_done_callback(started.discard)
        loop.call_at(when + 1.0, fire, when + 1.0)

    for i in range(n):
        loop.call_at(1 + i / n, fire, 1 + i / n)
    await asyncio.sleep(2.5 + seconds)

run(main(int(sys.argv[1]), int(sys.argv[2])))
""",
}


def instructions(program: str, argv: list[str], python: str) -> int:
    """Instructions callgrind counts for ``python -c program *argv``."""
    # The project first: an editable install is found through a .pth file, which only
    # the virtualenv's own site directory reads, and the real binary has another one.
    paths = [str(ROOT), *(p for p in sys.path if p)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            python,
            "-c",
            textwrap.dedent(program),
            *argv,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


#: Seconds of the spread load measured (after 2.5 s of start and warm-up).
SPREAD_SECONDS = 2


def per_operation(op: str, lib: str, n: int, python: str, history: str = "on") -> float:
    program = PROGRAMS[(op, lib)]
    if op == "spread":
        # Both programs add the tasks and run the first 2.5 s; the second runs
        # ``SPREAD_SECONDS`` more: n runs a second, one per wake-up.
        return (
            instructions(program, [str(SPREAD_SECONDS), str(n)], python)
            - instructions(program, ["0", str(n)], python)
        ) / (SPREAD_SECONDS * n)
    if op == "run":
        # Adding the tasks is in both runs; only the N runs (4 per task) differ, the
        # writing of their records included (the history's thread counts too).
        return (
            instructions(program, ["1", str(n), history], python)
            - instructions(program, ["0", str(n), history], python)
        ) / (4 * n)
    return (instructions(program, [str(n)], python) - instructions(program, ["0"], python)) / n


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("ops", nargs="*", metavar="add|run|spread", help="default: all")
    parser.add_argument("--lib", choices=["tickwork", "apscheduler", "asyncio"], action="append")
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    args = parser.parse_args(argv)
    for op in args.ops:
        if op not in ("add", "run", "spread"):
            parser.error(f"unknown operation {op!r}: add, run or spread")
    args.ops = args.ops or ["add", "run", "spread"]
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    libs = args.lib or ["tickwork", "apscheduler", "asyncio"]
    if "apscheduler" in libs and importlib.util.find_spec("apscheduler") is None:
        peers = ROOT / "bench" / ".venv" / "bin" / "python"
        if peers.exists() and Path(sys.prefix).resolve() != peers.parent.parent.resolve():
            os.execv(str(peers), [str(peers), str(Path(__file__).resolve()), *argv])
        print("APScheduler is not installed here (run bench/run.py once to create bench/.venv)")
        libs = [lib for lib in libs if lib != "apscheduler"]
    python = os.path.realpath(sys.executable)
    for op in args.ops:
        for lib in libs:
            if (op, lib) not in PROGRAMS:
                continue
            if op == "run" and lib == "tickwork":
                for history in ("off", "on"):
                    cost = per_operation(op, lib, args.n, python, history)
                    print(
                        f"{op:4s} {lib:12s} {cost:10,.0f} instructions per {op} "
                        f"(run history {history})",
                        flush=True,
                    )
                continue
            cost = per_operation(op, lib, args.n, python)
            what = "wake-up (one run each)" if op == "spread" else op
            print(f"{op:4s} {lib:12s} {cost:10,.0f} instructions per {what}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
