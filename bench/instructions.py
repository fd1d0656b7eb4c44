"""Instructions per operation under callgrind: a cost that does not move with the load of
the machine, unlike seconds.

    python bench/instructions.py                  # add and run, tickwork and APScheduler
    python bench/instructions.py add --n 4000     # one operation, more repetitions
    python bench/instructions.py run --lib tickwork

For each operation it runs a small program twice under ``valgrind --tool=callgrind``,
once doing the operation N times and once not at all, and prints
(I(N) - I(0)) / N. The program runs on the real interpreter binary (a virtualenv's
``python`` is a symlink that valgrind follows anyway; ``sys.path`` is passed on), so
the figure is the same from run to run on the same machine and build.

* ``add``: ``add_task(fn, "interval", seconds=3600)`` on a running ``AsyncIOScheduler``
  with the memory store (``add_job`` for APScheduler 3);
* ``run``: one run of a coroutine task in a burst: N interval tasks come due at once, four
  times, on a fake clock (tickwork only: APScheduler has no clock to drive), with the run
  history off and on (on: the writing of the records counts too).

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


def per_operation(op: str, lib: str, n: int, python: str, history: str = "on") -> float:
    program = PROGRAMS[(op, lib)]
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
    parser.add_argument("ops", nargs="*", metavar="add|run", help="default: both")
    parser.add_argument("--lib", choices=["tickwork", "apscheduler"], action="append")
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    args = parser.parse_args(argv)
    for op in args.ops:
        if op not in ("add", "run"):
            parser.error(f"unknown operation {op!r}: add or run")
    args.ops = args.ops or ["add", "run"]
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    libs = args.lib or ["tickwork", "apscheduler"]
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
            print(f"{op:4s} {lib:12s} {cost:10,.0f} instructions per {op}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
