"""Benchmark tickwork side by side with asyncz, APScheduler 3 and APScheduler 4.

    python bench/run.py            # the full run (about 20 minutes on 2 cores)
    python bench/run.py --quick    # about 5 minutes: smaller sizes, shorter windows
    python bench/run.py --only burst,precision
    python bench/run.py --only fleet,store_scale   # bench/fleet_scale.py, bench/store_scale.py
    python bench/run.py --write-docs            # also regenerate docs/performance.md
    python bench/run.py --load bench/results/X.json --write-docs   # docs from a saved run

Each scenario runs on each library in a fresh process (``bench/scenarios.py``), which
prints one JSON line; this script collects them into one table with absolute figures,
tickwork's ratio to each peer, the target and whether it is met.

The peers live only in ``bench/.venv``: when they are not importable, this script
creates that virtualenv (``pip install -r bench/requirements.txt -e .``) and re-runs
itself inside it. APScheduler 4 (a pre-release) installs the same package name as
APScheduler 3, so it gets a virtualenv of its own, ``bench/.venv-aps4``
(``bench/requirements-aps4.txt``), created on first use; its scenarios run in that
virtualenv's Python. Where a scenario also runs bare ``loop.call_at`` timers (the floor,
"library" ``asyncio``), the table shows tickwork's ratio to it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
RESULTS = BENCH / "results"
DOCS = ROOT / "docs" / "performance.md"
VENV_APS4 = BENCH / ".venv-aps4"
#: The libraries measured, tickwork first; APScheduler 4 runs from its own virtualenv.
PEERS = ("tickwork", "asyncz", "apscheduler", "apscheduler4")
#: The peers importable in bench/.venv (APScheduler 4 is not: see VENV_APS4).
VENV_PEERS = ("tickwork", "asyncz", "apscheduler")
APS4 = "apscheduler4"
#: The floor's "library": bare asyncio timers (see bench/scenarios.py).
FLOOR = "asyncio"
LABELS = {
    "tickwork": "tickwork",
    "asyncz": "asyncz 0.17",
    "apscheduler": "APScheduler 3.11",
    "apscheduler4": "APScheduler 4.0.0a6",
    FLOOR: "floor (bare asyncio)",
}

Result = dict[str, Any]


# ---------------------------------------------------------------------------------------
# The virtualenv


def peers_importable() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in VENV_PEERS)


def ensure_venv(argv: list[str]) -> None:
    """Re-exec inside bench/.venv (creating or repairing it first) unless the peers are
    importable here already."""
    if peers_importable():
        return
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        # Inside the venv and still missing something: install, then start over.
        install(python)
    else:
        if not python.exists():
            print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            install(python)
        elif not imports_in(python):
            install(python)
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])


def imports_in(python: Path) -> bool:
    check = "import " + ", ".join(VENV_PEERS)
    return subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def install(python: Path) -> None:
    print("installing the peers and tickwork (editable) into bench/.venv ...", file=sys.stderr)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(BENCH / "requirements.txt"),
            "-e",
            str(ROOT),
        ],
        check=True,
    )


@functools.cache
def aps4_python() -> Path:
    """bench/.venv-aps4's Python, creating the virtualenv (APScheduler 4.0.0a6 and tickwork,
    editable) on first use or repairing it when APScheduler 4 is not importable there."""
    python = VENV_APS4 / "bin" / "python"
    check = "import apscheduler, tickwork; assert hasattr(apscheduler, 'AsyncScheduler')"
    if (
        python.exists()
        and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0
    ):
        return python
    if not python.exists():
        print(f"creating {VENV_APS4} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV_APS4)], check=True)
    print("installing APScheduler 4 and tickwork (editable) into it ...", file=sys.stderr)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(BENCH / "requirements-aps4.txt"),
            "-e",
            str(ROOT),
        ],
        check=True,
    )
    return python


def python_for(lib: str) -> str:
    """The interpreter that runs ``lib``'s scenarios."""
    return str(aps4_python()) if lib == APS4 else sys.executable


# ---------------------------------------------------------------------------------------
# What runs: jobs (one scenario, several libraries) and the rows read from them


@dataclass
class Job:
    """One scenario with fixed parameters, run once per library in ``libs``."""

    key: str
    group: str  # what --only selects
    scenario: str
    full: dict[str, Any] | None  # parameters of the full run (None: not in the full run)
    quick: dict[str, Any] | None  # parameters of the quick run (None: skipped with --quick)
    libs: tuple[str, ...] = PEERS
    quick_libs: tuple[str, ...] | None = None  # a subset for --quick
    parallel: bool = False  # memory-only jobs: the libraries may run side by side
    timeout: float = 400.0
    #: Short scenarios run this many rounds, the libraries taking turns, and each
    #: library's round with the median ``by`` figure is kept (the others stay in "rounds").
    repeats: int = 1
    by: str = ""
    quick_repeats: int | None = None  # rounds with --quick (default: ``repeats``)
    #: A job that runs tickwork only and shows the peers' figures of this other job (the
    #: same scenario with tickwork set otherwise): selecting it runs that job too.
    peers_from: str = ""

    def params(self, quick: bool) -> dict[str, Any] | None:
        return self.quick if quick else self.full

    def rounds(self, quick: bool) -> int:
        return self.quick_repeats if quick and self.quick_repeats is not None else self.repeats

    def libraries(self, quick: bool) -> tuple[str, ...]:
        return self.quick_libs if quick and self.quick_libs is not None else self.libs


@dataclass
class Target:
    """A goal for tickwork on one row; ``check`` returns (met, text of the bound)."""

    text: str
    check: Callable[[dict[str, float | None], Results], tuple[bool, str] | None]


@dataclass
class Row:
    key: str
    label: str
    unit: str
    job: str
    metric: str
    higher_is_better: bool
    target: Target | None = None
    fmt: str = "num"
    ratios: bool = True  # False where tickwork / peer means nothing (counts of missed runs)


@dataclass
class Results:
    """Raw results by job key and library, plus facts about the run."""

    quick: bool
    data: dict[str, dict[str, Result]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def result(self, job: str, lib: str) -> Result | None:
        """``lib``'s result in ``job``; a peer's comes from the job's ``peers_from`` job
        when the job did not run that peer."""
        result = self.data.get(job, {}).get(lib)
        if result is None and lib != "tickwork" and PEERS_FROM.get(job):
            result = self.data.get(PEERS_FROM[job], {}).get(lib)
        return result

    def value(self, job: str, lib: str, metric: str) -> float | None:
        result = self.result(job, lib)
        if not result or "error" in result or "skipped" in result:
            return None
        value = result.get(metric)
        if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            return float(value)
        return None


def peer_ratio(
    lib: str, bound: float, at_least: bool
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    def check(values: dict[str, float | None], _: Results) -> tuple[bool, str] | None:
        mine, theirs = values.get("tickwork"), values.get(lib)
        if mine is None or theirs is None:
            return None
        if theirs == 0:
            return (mine > 0 if at_least else False), f"{LABELS[lib]} has 0"
        ratio = mine / theirs
        return (ratio >= bound if at_least else ratio <= bound), f"{ratio:.2f}x"

    return check


def floor_bound(
    job: str, metric: str, plus: float = 0.0, times: float = 1.0
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    """A bound from the precision floor measured in ``job``'s own rounds (the bare timer
    takes turns with the libraries, so a slow spell of the machine hits both sides)."""

    def check(values: dict[str, float | None], results: Results) -> tuple[bool, str] | None:
        mine = values.get("tickwork")
        floor = results.value(job, FLOOR, metric)
        if floor is None:  # results saved before the floor took turns in each job
            floor = results.value("precision_floor", FLOOR, metric)
        if mine is None or floor is None:
            return None
        bound = floor * times + plus
        return mine <= bound, f"bound {bound:.2f} ms (floor {floor:.2f})"

    return check


def floor_ratio(
    bound: float, at_least: bool
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    """tickwork's figure against the floor's in the same job: at least (rates) or at most
    (costs) ``bound`` times it."""

    def check(values: dict[str, float | None], _: Results) -> tuple[bool, str] | None:
        mine, floor = values.get("tickwork"), values.get(FLOOR)
        if mine is None or floor is None or floor == 0:
            return None
        ratio = mine / floor
        return (ratio >= bound if at_least else ratio <= bound), f"{ratio:.2f}x floor"

    return check


def ahead_of(
    lib: str, higher_is_better: bool
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    """tickwork's figure better than ``lib``'s (strictly)."""

    def check(values: dict[str, float | None], _: Results) -> tuple[bool, str] | None:
        mine, theirs = values.get("tickwork"), values.get(lib)
        if mine is None or theirs is None:
            return None
        ahead = mine > theirs if higher_is_better else mine < theirs
        ratio = f"{mine / theirs:.2f}x" if theirs else "∞"
        return ahead, f"{ratio} {LABELS[lib]}"

    return check


def at_most(
    bound: float, unit: str
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    def check(values: dict[str, float | None], _: Results) -> tuple[bool, str] | None:
        mine = values.get("tickwork")
        if mine is None:
            return None
        return mine <= bound, f"{mine:,.0f} {unit}"

    return check


def all_of(*targets: Target) -> Target:
    """Several targets on one row: met when every one that could be judged is met (one
    that cannot, for want of a figure, is shown as n/a and does not count)."""

    def check(values: dict[str, float | None], results: Results) -> tuple[bool, str] | None:
        outcomes = [target.check(values, results) for target in targets]
        if all(outcome is None for outcome in outcomes):
            return None
        met = all(outcome[0] for outcome in outcomes if outcome is not None)
        details = [
            "n/a" if outcome is None else ("" if outcome[0] else "MISS ") + outcome[1]
            for outcome in outcomes
        ]
        return met, "; ".join(details)

    return Target("; ".join(target.text for target in targets), check)


def ahead_of_aps4(higher_is_better: bool) -> Target:
    return Target("ahead of APScheduler 4", ahead_of(APS4, higher_is_better))


def bulk_vs_single(
    job: str,
) -> Callable[[dict[str, float | None], Results], tuple[bool, str] | None]:
    def check(values: dict[str, float | None], results: Results) -> tuple[bool, str] | None:
        bulk = values.get("tickwork")
        single = results.value(job, "tickwork", "single_rate")
        if bulk is None or single is None or single == 0:
            return None
        ratio = bulk / single
        return ratio >= 10, f"{ratio:.1f}x single"

    return check


JOBS = [
    Job("add_10k", "add", "add", {"n": 10_000}, {"n": 10_000}, repeats=3, by="rate"),
    Job("add_100k", "add", "add", {"n": 100_000}, None),
    Job("mem_100k", "memory", "memory", {"n": 100_000}, {"n": 100_000}, parallel=True),
    Job("mem_1m", "memory", "memory", {"n": 1_000_000}, None, parallel=True, timeout=900),
    # Burst and steady: tickwork with its run history off (run_history=None), like for
    # like with the peers, which keep no record of runs; then tickwork alone with the
    # history on (its default), shown against the same peer figures.
    # The floor (one call_at per run starting the coroutine) takes turns with the
    # libraries in the asyncio burst and the steady loads: a ratio to it is read within
    # one run of the machine.
    Job(
        "burst_asyncio",
        "burst",
        "burst",
        {"n": 10_000, "executor": "asyncio", "history": "off"},
        {"n": 10_000, "executor": "asyncio", "timeout": 30, "history": "off"},
        libs=(FLOOR, *PEERS),
        repeats=3,
        by="runs_per_s",
        quick_repeats=1,
    ),
    Job(
        "burst_asyncio_history",
        "burst",
        "burst",
        {"n": 10_000, "executor": "asyncio", "history": "on"},
        {"n": 10_000, "executor": "asyncio", "timeout": 30, "history": "on"},
        libs=("tickwork",),
        peers_from="burst_asyncio",
    ),
    Job(
        "burst_threads",
        "burst",
        "burst",
        {"n": 10_000, "executor": "threadpool", "history": "off"},
        {"n": 10_000, "executor": "threadpool", "timeout": 30, "history": "off"},
    ),
    Job(
        "burst_threads_history",
        "burst",
        "burst",
        {"n": 10_000, "executor": "threadpool", "history": "on"},
        {"n": 10_000, "executor": "threadpool", "timeout": 30, "history": "on"},
        libs=("tickwork",),
        peers_from="burst_threads",
    ),
    # The bare timer (the floor) takes turns with the libraries, three rounds of 8 s each:
    # the floor moves by up to 0.2 ms from one 10 s measurement to the next on this
    # machine, as much as the 0.3 ms the target allows.
    Job(
        "precision",
        "precision",
        "precision",
        {"duration": 8},
        {"duration": 4},
        libs=(FLOOR, *PEERS),
        repeats=3,
        by="p50_ms",
        quick_repeats=1,
    ),
    Job(
        "precision_idle",
        "precision",
        "precision",
        {"duration": 8, "idle": 100_000},
        {"duration": 4, "idle": 100_000},
        libs=(FLOOR, *PEERS),
        quick_libs=(FLOOR, "tickwork"),
        repeats=3,
        by="p50_ms",
        quick_repeats=1,
    ),
    Job(
        "steady",
        "steady",
        "steady",
        {"duration": 10, "history": "off"},
        {"duration": 5, "history": "off"},
        libs=(FLOOR, *PEERS),
    ),
    # The same 1,000 tasks with their phases spread over the second: 1,000 wake-ups a
    # second, one run each (the one-grid row above measures batching).
    Job(
        "steady_spread",
        "steady",
        "steady",
        {"duration": 10, "history": "off", "spread": 1},
        {"duration": 5, "history": "off", "spread": 1},
        libs=(FLOOR, *PEERS),
        repeats=3,
        by="cpu_per_1000",
        quick_repeats=1,
    ),
    Job(
        "steady_spread_history",
        "steady",
        "steady",
        {"duration": 10, "history": "on", "spread": 1},
        {"duration": 5, "history": "on", "spread": 1},
        libs=("tickwork",),
        peers_from="steady_spread",
    ),
    Job(
        "steady_history",
        "steady",
        "steady",
        {"duration": 10, "history": "on"},
        {"duration": 5, "history": "on"},
        libs=("tickwork",),
        peers_from="steady",
    ),
    # SQL rows: APScheduler 4's SQL data store is left out (its API and storage model
    # differ too much for a like-for-like add/burst; issue 19 asks for it in memory).
    Job(
        "sqlite_add",
        "sql",
        "sql_add",
        {"db": "sqlite", "n": 1000},
        {"db": "sqlite", "n": 300},
        libs=VENV_PEERS,
    ),
    Job(
        "sqlite_burst",
        "sql",
        "burst",
        {"n": 1000, "store": "sqlite", "grace": "none"},
        {"n": 500, "store": "sqlite", "grace": "none"},
        libs=VENV_PEERS,
    ),
    Job("pg_add", "sql", "sql_add", {"db": "postgres", "n": 1000}, None, libs=VENV_PEERS),
    Job(
        "pg_burst",
        "sql",
        "burst",
        {"n": 1000, "store": "postgres", "grace": "none"},
        None,
        libs=VENV_PEERS,
    ),
    # The same with tickwork's records signed / encrypted (docs/security.md): its cost.
    *(
        job
        for security in ("signed", "encrypted")
        for job in (
            Job(
                f"sqlite_add_{security}",
                "sql",
                "sql_add",
                {"db": "sqlite", "n": 1000, "security": security},
                {"db": "sqlite", "n": 300, "security": security},
                libs=("tickwork",),
                peers_from="sqlite_add",
            ),
            Job(
                f"sqlite_burst_{security}",
                "sql",
                "burst",
                {"n": 1000, "store": "sqlite", "grace": "none", "security": security},
                {"n": 500, "store": "sqlite", "grace": "none", "security": security},
                libs=("tickwork",),
                peers_from="sqlite_burst",
            ),
        )
    ),
    Job("cron", "cron", "cron", {"quick": 0}, {"quick": 1}, libs=("tickwork",)),
    # Scripts of their own (bench/fleet_scale.py, bench/store_scale.py), run through
    # scenarios.py like cron_cost.py; their tables go below the main one.
    Job("fleet", "fleet", "fleet", {"quick": 0}, {"quick": 1}, libs=("tickwork",), timeout=900),
    Job(
        "store_scale",
        "store_scale",
        "store_scale",
        {"quick": 0},
        {"quick": 1},
        libs=("tickwork",),
        timeout=1800,
    ),
]

PEERS_FROM = {job.key: job.peers_from for job in JOBS if job.peers_from}

BURST_ASYNCIO_TARGET = all_of(
    Target("≥ 3x APScheduler", peer_ratio("apscheduler", 3, True)),
    Target("≥ 0.7x floor", floor_ratio(0.7, True)),
    ahead_of_aps4(True),
)
STEADY_SPREAD_TARGET = all_of(Target("≤ 1.5x floor", floor_ratio(1.5, False)), ahead_of_aps4(False))

ROWS = [
    Row(
        "add_10k",
        "add 10,000 interval tasks, running scheduler",
        "tasks/s",
        "add_10k",
        "rate",
        True,
        all_of(Target("≥ 5x APScheduler", peer_ratio("apscheduler", 5, True)), ahead_of_aps4(True)),
    ),
    Row(
        "add_100k",
        "add 100,000 interval tasks, running scheduler",
        "tasks/s",
        "add_100k",
        "rate",
        True,
        all_of(Target("≥ 5x APScheduler", peer_ratio("apscheduler", 5, True)), ahead_of_aps4(True)),
    ),
    Row(
        "mem_100k",
        "memory per task, 100,000 tasks",
        "RSS bytes/task",
        "mem_100k",
        "bytes_per_task",
        False,
        all_of(
            Target("≤ 50 % of APScheduler", peer_ratio("apscheduler", 0.5, False)),
            ahead_of_aps4(False),
        ),
        fmt="int",
    ),
    Row(
        "mem_1m",
        "memory per task, 1,000,000 tasks",
        "RSS bytes/task",
        "mem_1m",
        "bytes_per_task",
        False,
        all_of(
            Target("≤ 50 % of APScheduler", peer_ratio("apscheduler", 0.5, False)),
            Target("≤ 300 B/task", at_most(300, "B")),
            ahead_of_aps4(False),
        ),
        fmt="int",
    ),
    Row(
        "burst_asyncio",
        "burst of 10,000 due at once, asyncio executor (coroutines), run history off",
        "runs/s",
        "burst_asyncio",
        "runs_per_s",
        True,
        BURST_ASYNCIO_TARGET,
    ),
    Row(
        "burst_asyncio_lag",
        "  max event-loop lag during that burst",
        "ms",
        "burst_asyncio",
        "max_lag_ms",
        False,
        fmt="ms",
    ),
    Row(
        "burst_asyncio_missed",
        "  runs reported missed (default grace)",
        "runs",
        "burst_asyncio",
        "missed",
        False,
        fmt="int",
        ratios=False,
    ),
    Row(
        "burst_asyncio_cpu",
        "  CPU per run, all threads",
        "µs",
        "burst_asyncio",
        "cpu_us_per_run",
        False,
    ),
    Row(
        "burst_asyncio_history",
        "burst (asyncio), run history on (peers: the row above)",
        "runs/s",
        "burst_asyncio_history",
        "runs_per_s",
        True,
        BURST_ASYNCIO_TARGET,
    ),
    Row(
        "burst_asyncio_history_lag",
        "  max event-loop lag during that burst",
        "ms",
        "burst_asyncio_history",
        "max_lag_ms",
        False,
        fmt="ms",
    ),
    Row(
        "burst_asyncio_history_cpu",
        "  CPU per run, all threads, until its record is written",
        "µs",
        "burst_asyncio_history",
        "cpu_us_per_run",
        False,
    ),
    Row(
        "burst_threads",
        "burst of 10,000 due at once, thread pool (sync, 10 threads), run history off",
        "runs/s",
        "burst_threads",
        "runs_per_s",
        True,
        all_of(Target("≥ 3x APScheduler", peer_ratio("apscheduler", 3, True)), ahead_of_aps4(True)),
    ),
    Row(
        "burst_threads_lag",
        "  max event-loop lag during that burst",
        "ms",
        "burst_threads",
        "max_lag_ms",
        False,
        fmt="ms",
    ),
    Row(
        "burst_threads_missed",
        "  runs reported missed (default grace)",
        "runs",
        "burst_threads",
        "missed",
        False,
        fmt="int",
        ratios=False,
    ),
    Row(
        "burst_threads_cpu",
        "  CPU per run, all threads",
        "µs",
        "burst_threads",
        "cpu_us_per_run",
        False,
    ),
    Row(
        "burst_threads_history",
        "burst (thread pool), run history on (peers: the row above)",
        "runs/s",
        "burst_threads_history",
        "runs_per_s",
        True,
        all_of(Target("≥ 3x APScheduler", peer_ratio("apscheduler", 3, True)), ahead_of_aps4(True)),
    ),
    Row(
        "burst_threads_history_lag",
        "  max event-loop lag during that burst",
        "ms",
        "burst_threads_history",
        "max_lag_ms",
        False,
        fmt="ms",
    ),
    Row(
        "burst_threads_history_cpu",
        "  CPU per run, all threads, until its record is written",
        "µs",
        "burst_threads_history",
        "cpu_us_per_run",
        False,
    ),
    Row(
        "precision_p50",
        "lateness p50, 50 ms interval coroutine task",
        "ms",
        "precision",
        "p50_ms",
        False,
        all_of(
            Target("≤ floor p50 + 0.3 ms", floor_bound("precision", "p50_ms", plus=0.3)),
            ahead_of_aps4(False),
        ),
        fmt="ms",
    ),
    Row(
        "precision_p99",
        "lateness p99, same",
        "ms",
        "precision",
        "p99_ms",
        False,
        all_of(
            Target("≤ 2x floor p99", floor_bound("precision", "p99_ms", times=2)),
            ahead_of_aps4(False),
        ),
        fmt="ms",
    ),
    Row(
        "precision_idle_p50",
        "lateness p50, with 100,000 idle tasks",
        "ms",
        "precision_idle",
        "p50_ms",
        False,
        all_of(
            Target("≤ floor p50 + 0.3 ms", floor_bound("precision_idle", "p50_ms", plus=0.3)),
            ahead_of_aps4(False),
        ),
        fmt="ms",
    ),
    Row(
        "precision_idle_p99",
        "lateness p99, with 100,000 idle tasks",
        "ms",
        "precision_idle",
        "p99_ms",
        False,
        all_of(
            Target("≤ 2x floor p99", floor_bound("precision_idle", "p99_ms", times=2)),
            ahead_of_aps4(False),
        ),
        fmt="ms",
    ),
    Row(
        "steady_cpu",
        "steady load, 1,000 coroutine tasks every second on one grid, run history off",
        "CPU s / 1,000 runs",
        "steady",
        "cpu_per_1000",
        False,
        all_of(
            Target("≤ 1/3 of APScheduler", peer_ratio("apscheduler", 1 / 3, False)),
            ahead_of_aps4(False),
        ),
        fmt="cpu",
    ),
    Row(
        "steady_history_cpu",
        "steady load, run history on (peers: the row above)",
        "CPU s / 1,000 runs",
        "steady_history",
        "cpu_per_1000",
        False,
        all_of(
            Target("≤ 1/3 of APScheduler", peer_ratio("apscheduler", 1 / 3, False)),
            ahead_of_aps4(False),
        ),
        fmt="cpu",
    ),
    Row(
        "steady_spread_cpu",
        "steady load, 1,000 coroutine tasks every second, phases spread over the second "
        "(1,000 wake-ups a second), run history off",
        "CPU s / 1,000 runs",
        "steady_spread",
        "cpu_per_1000",
        False,
        STEADY_SPREAD_TARGET,
        fmt="cpu",
    ),
    Row(
        "steady_spread_history_cpu",
        "steady load, phases spread, run history on (peers: the row above)",
        "CPU s / 1,000 runs",
        "steady_spread_history",
        "cpu_per_1000",
        False,
        STEADY_SPREAD_TARGET,
        fmt="cpu",
    ),
    Row(
        "sqlite_add_single",
        "SQLite: add_task, one call per task",
        "tasks/s",
        "sqlite_add",
        "single_rate",
        True,
    ),
    Row(
        "sqlite_add_bulk",
        "SQLite: add_tasks, one call for all",
        "tasks/s",
        "sqlite_add",
        "bulk_rate",
        True,
        Target("≥ 10x single adds", bulk_vs_single("sqlite_add")),
    ),
    Row(
        "sqlite_burst",
        "SQLite: burst of due tasks (grace: none)",
        "runs/s",
        "sqlite_burst",
        "runs_per_s",
        True,
        Target("≥ 3x APScheduler", peer_ratio("apscheduler", 3, True)),
    ),
    *(
        row
        for security in ("signed", "encrypted")
        for row in (
            Row(
                f"sqlite_add_single_{security}",
                f"SQLite: add_task, one call per task, records {security}",
                "tasks/s",
                f"sqlite_add_{security}",
                "single_rate",
                True,
            ),
            Row(
                f"sqlite_add_bulk_{security}",
                f"SQLite: add_tasks, one call for all, records {security}",
                "tasks/s",
                f"sqlite_add_{security}",
                "bulk_rate",
                True,
            ),
            Row(
                f"sqlite_burst_{security}",
                f"SQLite: burst of due tasks (grace: none), records {security}",
                "runs/s",
                f"sqlite_burst_{security}",
                "runs_per_s",
                True,
            ),
        )
    ),
    Row(
        "pg_add_single",
        "PostgreSQL: add_task, one call per task",
        "tasks/s",
        "pg_add",
        "single_rate",
        True,
    ),
    Row(
        "pg_add_bulk",
        "PostgreSQL: add_tasks, one call for all",
        "tasks/s",
        "pg_add",
        "bulk_rate",
        True,
        Target("≥ 10x single adds", bulk_vs_single("pg_add")),
    ),
    Row(
        "pg_burst",
        "PostgreSQL: burst of 1,000 due tasks (grace: none)",
        "runs/s",
        "pg_burst",
        "runs_per_s",
        True,
    ),
]

_ADD_NOTE = (
    "**Why.** An `add_task(fn, 'interval', seconds=...)` on a running scheduler costs about "
    "65,000 instructions under callgrind (a figure that does not move with the load of the "
    "machine), against about 325,000 for APScheduler 3's `add_job`: about 5x in work. The "
    "wall-clock ratio has been 6-9x at 10,000 tasks and 5-7x at 100,000 in most runs, and "
    "4.8-5.2x in the two runs of 2026-12-04 late evening, when every library and the bare "
    "asyncio floor ran 20-35 % slower than earlier that day (nothing on the add path had "
    "changed; tickwork's adds lost 29-35 %, APScheduler 3's 17-27 %, why was not found). At "
    "about 5x in instructions the target sits on the margin, and the machine's hour "
    "decides.\n\n"
    "**Measure it without the noise.** `valgrind --tool=callgrind` on the real `python3.11` "
    "binary, running N adds and then none, gives (I(N) - I(0)) / N instructions per add; "
    'see `docs/performance.md`, "Where the margins come from". What would widen the margin: '
    "fewer objects per task (see the memory note: each one is also an allocation per add)."
)

_MEMORY_NOTE = (
    "**Why.** An interval task in the memory store costs about 370-385 bytes of RSS, counted "
    "in pymalloc's size classes: the `Task` (10 slots, 112 B), its id (96 B), its next run "
    "time as a `datetime` (48 B) and the float timestamp it is filed under (32 B), its "
    "entries in the id dict (about 38 B) and the bucket dict (about 45 B), and the heap "
    "(8 B). That is well under half of APScheduler 3 (about 865) and 4 (about 750), but over "
    "the 300 B target. RSS is read from `/proc/self/statm`.\n\n"
    "**Tried and left out** (2026-12-04): the store's index as a heap of `float` subclasses "
    "carrying their ids, with no timestamp-to-bucket dict: 370 -> 344 B at 1,000,000 tasks, "
    "but 2.9 % more instructions per add and a third more per full garbage collection (the "
    "slots are tracked by the collector, plain floats are not), for a target still missed.\n\n"
    "**What would meet it.** The task itself is 256 B of the total (`Task` 112 + id 96 + "
    "`datetime` 48), which no layout of the store's index reaches: the next run time kept "
    "only as the float it is filed under, the `datetime` made on read (-48 B; every store "
    "and the scheduler read it), tags and store alias moved into the shared profile (8 "
    "slots: a 96 B `Task`, -16 B), and generated ids of 31 characters (the 80 B size class, "
    "-16 B)."
)

_BURST_NOTE = (
    "**Why.** Against APScheduler the burst runs 4-14x its rate. Against the floor (one "
    "`loop.call_at` per run starting the coroutine) it has been 0.60-0.64x of the runs/s on "
    "this machine. A run costs about 55,000 instructions in a burst (`python "
    "bench/instructions.py run`: 54,676 on 2026-12-04 after the per-run path for coroutine "
    "tasks was shortened, 60,100 before; run history off). The loop never waits during the "
    "burst (every `select` in it had a zero timeout) and no other thread runs: the gap is "
    "CPU, paid in one longer stretch than the floor's (about 85 ms against 25 ms), which a "
    "busy machine also preempts more.\n\n"
    "**Tried and left out:** larger batches (4,096 instead of 256 tasks) cost more, not "
    "less (58,864 against 56,180 instructions per run, history off), and 10,000 at once "
    "made the loop stall 190-200 ms. Dropping the per-run cancel guard would save about "
    "2,400 instructions, but a run cancelled before its start must be reported at once.\n\n"
    "**What would meet it.** Less CPU per run in the pass itself: per wake-up the memory "
    "store's `release_tasks` and `acquire_due_tasks` (45 Python lines together), the gate's "
    "`_local_batch` and `process_batch` (35), two `timestamp` conversions (16) and the "
    "interval trigger's `_next_on_grid` (13) are most of what is left over the floor; a "
    "next run time kept as a float through the pass would remove the conversions."
)

_STEADY_NOTE = (
    "**Why.** 1,000 runs a second cost tickwork about 11-26 µs of CPU each (by the machine's "
    "speed that hour) against APScheduler's 35-92 µs, so the ratio sits near the target "
    "(0.27-0.36x in our runs) and moves with the load of the shared machine. Per run: about "
    "a third for the `asyncio.Task` (creation, registration in asyncio's task set, one step, "
    "finishing), a third for the executor's bookkeeping (instance count, the run's own "
    "finish) and a third for the pass (decide, next fire time, taking the task from its "
    "bucket and filing it again), plus cold caches after each second of sleep.\n\n"
    "**What would meet it reliably.** On Python 3.12 and later, start run tasks eagerly "
    "(`asyncio.Task(..., eager_start=True)`): a coroutine that finishes without awaiting "
    "then costs no loop scheduling at all. On 3.11 the `asyncio.Task` per run is the floor; "
    "stepping coroutines by hand outside a task would break `asyncio.current_task()` and "
    "`asyncio.timeout()` inside tasks."
)

_SPREAD_NOTE = (
    "**Why.** With the phases spread, every run is a wake-up of its own, so the "
    "per-wake-up path is paid once per run or two instead of once per 1,000. A cProfile "
    "of this scenario (tickwork, run history off, 5 s; 2026-12-04, on a busy machine) "
    "shows that path: the timer's callback runs one batch inline (claim from the memory "
    "store, decide, submit, write back, next run time) and then resolves the driver's "
    "future; the driver task wakes one loop iteration later and runs a second pass, which "
    "finds nothing due, looks up the next run time again and arms a new future and a new "
    "`call_later` timer. Per wake-up that is two passes, two next-run-time lookups, a "
    "future, a timer handle and a step of the driver task, against one `call_at` and one "
    "task for the floor: the driver's empty pass and re-arming took about a third of the "
    "scheduler's own time (cumulative, profiled: 188 µs for the timer's inline pass, 106 "
    "µs for the driver's). Timers fire at `epoll_wait`'s whole milliseconds, so a wake-up "
    "handled 1.9 runs on average (4,751 runs, 2,479 timer callbacks).\n\n"
    "**Since:** the per-run path was shortened (2026-12-04: 166,742 -> 157,041 "
    "instructions per wake-up under callgrind, against 94,425 for the floor: 1.66x; "
    "`python bench/instructions.py spread --lib tickwork --lib asyncio`).\n\n"
    "**What would meet it** (not tried): when the inline pass handled what was due and "
    "only in-process stores are involved, re-arm the timer from the callback with the "
    "next run time the pass already knows, instead of waking the driver for an empty "
    "pass; look the next run time up once per wake-up; keep one future and timer handle "
    "across sleeps instead of creating both each time; carry the run time as a float "
    "through the pass (two `timestamp` conversions per wake-up)."
)

_PRECISION_NOTE = (
    "**Why.** Not expected: the floor is mostly `epoll_wait`'s whole-millisecond timeout "
    "(a timer fires about 0.7-0.8 ms after its deadline, and the bare timer's coroutine "
    "starts one loop iteration later). tickwork's timer callback runs the pass for "
    "in-process stores itself, so its run also starts one iteration later, and a warm-up "
    "pass 1.5 ms before each planned wake-up keeps that pass's code and data in the CPU's "
    "caches: without it, after 50 ms of sleep, the pass for one due task took 0.2-0.3 ms "
    "instead of 0.05-0.15 and the median sat 0.2-0.3 ms over the floor's "
    "(`AsyncIOScheduler.warm_up_lead = 0` turns it off to compare). Look at the rounds in "
    "the raw results: the floor's own p50 moves by up to 0.2 ms from round to round."
)

_HISTORY_NOTE = (
    "**Why.** The run history costs about as much as the rest of a run's bookkeeping: "
    "with it on, a run in a burst takes about 113,000 instructions against 58,000 with it "
    "off (`bench/instructions.py run`, 2026-12-04), and in seconds the gap is wider where "
    "caches are cold (steady load: 19-28 µs of CPU per run against 7-11 in our runs) or "
    "where two threads take turns with the GIL (thread pool: a third to a half of the "
    "history-off rate). Timed apart, warm, per run: `RunRecorder.starting` 1.2 µs (a clock "
    "read, the lock, a dict entry); a `TaskExecutionEvent` built for every run, because the "
    "recorder listens to `TASK_EXECUTED` (with no listener none is built) 1.1 µs; its emit "
    "and `RunRecorder.finished` 1.3 µs; the writer's flush 2.3 µs per record (run id, "
    "`RunRecord`, the log's write). In the steady load, where each second's runs start "
    "cold, the same three parts (event, start and end notes, flush) cost about 4, 6 and "
    "7 µs. The writer's thread is not what slows the thread-pool burst: with it never "
    "started, that burst is as slow.\n\n"
    "**What would meet it** (not tried): take the recorder off the event path (the "
    "executors hand it the run's end directly, no event built for a recorder that needs "
    "a few fields), and note the starts of a pass step in one call (one clock read and one "
    "lock per batch, not per task)."
)

_SQL_BULK_NOTE = (
    "**Why.** Not expected: each task is serialized once on the `add_tasks` path of a "
    "running scheduler and the rows go to the driver's `executemany` in one transaction; "
    "bulk adds have run 9-24x single adds on SQLite and 11-24x on PostgreSQL. A single add on "
    "SQLite is cheap (no network, one commit), so this ratio is the first to move when the "
    "machine is busy or slow: a machine that runs Python slower slows the bulk add (JSON "
    "encoding, about 20 µs per task here) more than the single add (a commit). Look at the "
    "raw results."
)

#: Where tickwork's margins come from; printed on every generated page.
DESIGN_NOTES = (
    "## Where the margins come from\n\n"
    "- **One trigger for many tasks.** `create_trigger` (and so `add_task(fn, 'interval', "
    "minutes=5)`) hands out one instance per alias and keywords for triggers that never change "
    "once built (`BaseTrigger.shareable`): an interval without `start_at` holds no state of its "
    "own, its task's `next_run_time` carries the grid. No trigger to build or keep per task.\n"
    "- **One profile for many tasks.** The fields tasks share (callable, executor, run rules, "
    "scheduler) live in one interned `TaskProfile`; a `Task` keeps only what differs (id, "
    "name, trigger, next run time, arguments, tags, store): 10 slots, 112 bytes.\n"
    "- **An interval task in the memory store**, counted in pymalloc's size classes: the `Task` "
    "(112 B), its id (96 B), its next run time (48 B), the timestamp it is filed under (32 B), "
    "its slots in the id dict (about 38 B) and the bucket dict (about 45 B at 100,000 tasks) "
    "and in the heap (8 B): about 370-385 bytes.\n"
    "- **Counting instructions, not seconds.** The add path was tuned under "
    "`valgrind --tool=callgrind`, whose count is the same whether the other core is busy or "
    "not: `python bench/instructions.py` prints (I(N) - I(0)) / N per add and per run. On "
    "2026-12-04: 66,266 instructions per add (about 95,000 before the two sharing changes "
    "above), against 325,793 for APScheduler 3's `add_job`; 54,676 per run in a burst with "
    "the run history off, about 113,000 with it on (writing the records included).\n"
    "- **Warm caches for the wake-up that matters.** A scheduler wakes after long sleeps, "
    "and after 50 ms of sleep every line of its pass runs cold (the first "
    "`datetime.now(UTC)` took 6.7 µs here, the next 0.3 µs). A pass 1.5 ms before each "
    "planned wake-up (`AsyncIOScheduler.warm_up_lead`) finds nothing due and leaves the "
    "plan, but brings the pass back into the caches: the timer's pass for one due task "
    "went from 0.2-0.3 ms to 0.05-0.15 ms, and lateness down to the bare timer's.\n"
)

#: Per missed target: why, and what would meet it. Kept here so --write-docs keeps them;
#: edit them when the numbers move.
MISS_NOTES: dict[str, str] = {
    "add_10k": _ADD_NOTE,
    "add_100k": _ADD_NOTE,
    "mem_100k": _MEMORY_NOTE,
    "mem_1m": _MEMORY_NOTE,
    "burst_asyncio": _BURST_NOTE,
    "burst_threads": _BURST_NOTE,
    "burst_asyncio_history": _HISTORY_NOTE,
    "burst_threads_history": _HISTORY_NOTE,
    "steady_cpu": _STEADY_NOTE,
    "steady_history_cpu": _HISTORY_NOTE,
    "steady_spread_cpu": _SPREAD_NOTE,
    "steady_spread_history_cpu": _SPREAD_NOTE,
    "precision_p50": _PRECISION_NOTE,
    "precision_p99": _PRECISION_NOTE,
    "precision_idle_p50": _PRECISION_NOTE,
    "precision_idle_p99": _PRECISION_NOTE,
    "sqlite_add_bulk": _SQL_BULK_NOTE,
    "pg_add_bulk": _SQL_BULK_NOTE,
    "sqlite_burst": (
        "**Why.** Not expected: the SQL burst has run 4-10x APScheduler's rate. Look at the "
        "raw results for errors or an unusually busy machine."
    ),
}


# ---------------------------------------------------------------------------------------
# Running


def run_one(job: Job, lib: str, params: dict[str, Any]) -> Result:
    args = [python_for(lib), str(BENCH / "scenarios.py"), job.scenario, lib]
    args += [f"{key}={value}" for key, value in params.items()]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=job.timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {job.timeout:.0f} s"}
    return parse_output(proc.stdout, proc.stderr, proc.returncode)


def parse_output(stdout: str, stderr: str, returncode: int) -> Result:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            result: Result = json.loads(line)
            if "error" in result and stderr.strip():
                result["stderr_tail"] = stderr.strip().splitlines()[-5:]
            return result
    tail = stderr.strip().splitlines()[-3:]
    return {"error": f"no result (exit {returncode}): {' | '.join(tail)}"}


def run_job(job: Job, results: Results, verbose: bool) -> None:
    params = job.params(results.quick)
    if params is None:
        return
    libs = job.libraries(results.quick)
    out = results.data.setdefault(job.key, {})
    started = time.perf_counter()
    if job.parallel:
        procs = {
            lib: subprocess.Popen(
                [
                    python_for(lib),
                    str(BENCH / "scenarios.py"),
                    job.scenario,
                    lib,
                    *[f"{k}={v}" for k, v in params.items()],
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for lib in libs
        }
        for lib, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=job.timeout)
                out[lib] = parse_output(stdout, stderr, proc.returncode)
            except subprocess.TimeoutExpired:
                proc.kill()
                out[lib] = {"error": f"timed out after {job.timeout:.0f} s"}
    elif job.rounds(results.quick) > 1:
        rounds: dict[str, list[Result]] = {lib: [] for lib in libs}
        for _ in range(job.rounds(results.quick)):
            for lib in libs:  # taking turns: a slow spell of the machine hits every library
                rounds[lib].append(run_one(job, lib, params))
        for lib, runs in rounds.items():
            out[lib] = median_round(runs, job.by)
    else:
        for lib in libs:
            out[lib] = run_one(job, lib, params)
    if verbose:
        took = time.perf_counter() - started
        brief = {lib: short(r) for lib, r in out.items()}
        print(f"  {job.key:<16} {took:6.1f} s  {brief}", file=sys.stderr, flush=True)


def median_round(runs: list[Result], by: str) -> Result:
    """The round with the median ``by`` figure, with every round's figure in "rounds" (an
    error in any round is the result: a flaky scenario must show)."""
    for result in runs:
        if "error" in result or "skipped" in result:
            return result
    ordered = sorted(runs, key=lambda result: float(result[by]))
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds"] = [result[by] for result in runs]
    return chosen


def short(result: Result) -> str:
    if "error" in result:
        return "error: " + str(result["error"])[:80]
    if "skipped" in result:
        return "skipped"
    keys = ("rate", "bytes_per_task", "runs_per_s", "p50_ms", "cpu_per_1000", "single_rate", "rows")
    for key in keys:
        if key in result:
            value = result[key]
            return (
                f"{key}={value:.4g}"
                if isinstance(value, float)
                else f"{key}={len(value) if isinstance(value, list) else value}"
            )
    return "ok"


# ---------------------------------------------------------------------------------------
# The table


def fmt_value(value: float | None, fmt: str) -> str:
    if value is None:
        return "—"
    if fmt == "int":
        return f"{value:,.0f}"
    if fmt == "ms":
        return f"{value:.2f}"
    if fmt == "cpu":
        return f"{value:.4f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def cell(results: Results, row: Row, lib: str) -> str:
    result = results.result(row.job, lib)
    if result is None:
        return "—"
    if "skipped" in result:
        return "skipped"
    if "error" in result:
        return "error"
    text = fmt_value(results.value(row.job, lib, row.metric), row.fmt)
    missed = result.get("missed", 0)
    if row.metric == "runs_per_s" and missed:
        text += f" ({missed:,} missed)"
    return text


def ratio(results: Results, row: Row, peer: str) -> str:
    if not row.ratios:
        return ""
    mine = results.value(row.job, "tickwork", row.metric)
    theirs = results.value(row.job, peer, row.metric)
    if mine is None or theirs is None:
        return "—"
    if theirs == 0:
        return "∞" if mine > 0 else "—"
    return f"{mine / theirs:.2f}x"


def evaluate(results: Results, row: Row) -> tuple[str, str]:
    """(target text, result text) of a row."""
    if row.target is None:
        return "", ""
    values = {lib: results.value(row.job, lib, row.metric) for lib in (FLOOR, *PEERS)}
    outcome = row.target.check(values, results)
    if outcome is None:
        return row.target.text, "n/a"
    met, detail = outcome
    return row.target.text, f"{'**pass**' if met else '**MISS**'} ({detail})"


def table(results: Results) -> tuple[str, list[str], list[str]]:
    """The Markdown table, the notes about skipped/failed cells, and the missed rows."""
    head = [
        "scenario",
        "unit",
        LABELS[FLOOR],
        *(LABELS[lib] for lib in PEERS),
        "tickwork ÷ floor",
        "tickwork ÷ asyncz",
        "tickwork ÷ APScheduler 3",
        "tickwork ÷ APScheduler 4",
        "target",
        "result",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    missed: list[str] = []
    for row in ROWS:
        if row.job not in results.data:
            continue
        target, outcome = evaluate(results, row)
        if "MISS" in outcome:
            missed.append(row.key)
        cells = [
            row.label,
            row.unit,
            cell(results, row, FLOOR),
            *(cell(results, row, lib) for lib in PEERS),
            ratio(results, row, FLOOR),
            ratio(results, row, "asyncz"),
            ratio(results, row, "apscheduler"),
            ratio(results, row, APS4),
            target,
            outcome,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for job_key, by_lib in results.data.items():
        for lib, result in by_lib.items():
            for kind in ("skipped", "error"):
                if kind in result:
                    notes.append(f"{job_key} / {lib}: {kind}: {result[kind]}")
    return "\n".join(lines), notes, missed


def extra_sections(results: Results) -> list[str]:
    out: list[str] = []
    floors: list[str] = []
    for job in ("precision", "precision_idle", "precision_floor"):
        floor = results.data.get(job, {}).get(FLOOR)
        if not floor or "p50_ms" not in floor:
            continue
        rounds = floor.get("rounds")
        of_rounds = (
            f", the median of {len(rounds)} rounds' p50s "
            f"({', '.join(f'{value:.2f}' for value in rounds)} ms)"
            if rounds
            else ""
        )
        floors.append(
            f"in `{job}`, p50 {floor['p50_ms']:.2f} ms and p99 {floor['p99_ms']:.2f} ms over "
            f"{floor['samples']} runs{of_rounds}"
        )
    if floors:
        out.append(
            "Precision floor (a bare `loop.call_at` timer starting the same coroutine, same "
            f"machine): {'; '.join(floors)}. On Linux the selector's `epoll_wait` takes its "
            "timeout in whole milliseconds, so up to about 1 ms of lateness is the event "
            "loop's, not the scheduler's."
        )
    for job, render in (("fleet", fleet_section), ("store_scale", store_scale_section)):
        found = results.data.get(job, {}).get("tickwork")
        if found and "skipped" not in found and "error" not in found:
            out.append(render(found))
        elif found:
            out.append(f"{job}: {found.get('skipped') or found.get('error')}")
    cron = results.data.get("cron", {}).get("tickwork")
    if cron and cron.get("rows"):
        out.append(
            "Cron next-fire-time cost (from `bench/cron_cost.py`):\n\n" + cron_table(cron["rows"])
        )
        if cron.get("build"):
            out.append(
                "Building a cron trigger (for every `add_task`, and for every cron task a "
                "persistent store loads), µs per trigger and traced bytes kept per trigger, "
                "with one schedule for all and with a different one each (from "
                "`bench/cron_cost.py`):\n\n" + cron_table(cron["build"])
            )
    elif cron and "skipped" in cron:
        out.append(f"Cron rows: skipped ({cron['skipped']}).")
    return out


def fleet_section(result: Result) -> str:
    """The table of bench/fleet_scale.py: runs/s of 1, 2 and 4 schedulers sharing one
    store, duplicates counted, and what bounds the scaling."""
    lines = [
        "Fleets (from `bench/fleet_scale.py`): a burst of "
        f"{result.get('n', '?'):,} due tasks in one shared store, processed by 1, 2 and 4 "
        "schedulers in separate processes (claim batch "
        f"{result.get('batch_size', '?')}); runs/s from the due instant to the last run, "
        "duplicates = runs of one (task, time) seen more than once. Target: 2 members "
        "≥ 1.6x one.",
        "",
        "| store | schedulers | runs/s | ÷ 1 scheduler | duplicates | missing | claims (empty) | "
        "tasks per claim | claim ms (median) | release ms (median) | store's share of each "
        "member's burst | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result.get("rows", []):
        if "skipped" in row or "error" in row:
            lines.append(
                f"| {row['store']} | {row.get('members', '')} | "
                f"{row.get('skipped') or row.get('error')} | | | | | | | | | |"
            )
            continue
        speedup = row.get("speedup")
        target = ""
        if row["members"] == 2 and speedup is not None:
            target = f"{'**pass**' if speedup >= 1.6 else '**MISS**'} (≥ 1.6x)"
        lines.append(
            f"| {row['store']} | {row['members']} | {row['runs_per_s']:,.0f} | "
            f"{'' if speedup is None else f'{speedup:.2f}x'} | {row['duplicates']} | "
            f"{row['missing']} | {row.get('claims', '—')} ({row.get('empty_claims', '—')}) | "
            f"{row.get('tasks_per_claim', math.nan):.0f} | {fmt_ms(row.get('claim_ms'))} | "
            f"{fmt_ms(row.get('release_ms'))} | "
            f"{', '.join(f'{share:.0%}' for share in row.get('store_share') or [])} | {target} |"
        )
    if result.get("note"):
        lines += ["", str(result["note"])]
    return "\n".join(lines)


def store_scale_section(result: Result) -> str:
    """The table of bench/store_scale.py: start-up, next-batch time and memory of a
    scheduler on stores of 10k to 1M tasks."""
    lines = [
        "Scale of stores (from `bench/store_scale.py`): a scheduler started on a store that "
        "already holds N interval tasks (256 of them due); start = `start()` until running; next "
        "batch = one `acquire_due_tasks` claiming the 256 due tasks among them, and "
        "one `get_next_run_time` (twice: the first pays for cold caches); RSS = the scheduler "
        "process's growth over its start, modules already imported. On PostgreSQL the table "
        "is ANALYZEd after each seeding step, as autovacuum would soon after a bulk load. "
        "All should stay flat as N grows (indexed queries, no full loads).",
        "",
        "| store | tasks | seeding: add_tasks tasks/s (wall s of the step) | start ms | next batch ms | next run time ms "
        "(first, second) | RSS growth MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result.get("rows", []):
        if "skipped" in row or "error" in row:
            lines.append(
                f"| {row['store']} | {row.get('tasks', '')} | "
                f"{row.get('skipped') or row.get('error')} | | | | |"
            )
            continue
        lines.append(
            f"| {row['store']} | {row['tasks']:,} | {row['seed_rate']:,.0f} "
            f"({fmt_ms(row.get('seed_wall_s'))}) | "
            f"{row['start_ms']:.1f} | {row['batch_ms']:.1f} | "
            f"{row['next_ms']:.1f}, {row.get('next_again_ms', math.nan):.1f} | "
            f"{row['rss_mib']:.1f} |"
        )
    return "\n".join(lines)


def fmt_ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "—"


def cron_table(rows: list[dict[str, Any]]) -> str:
    """The rows of bench/cron_cost.py as they come (one column per key), plus tickwork's
    ratio to APScheduler where both figures are there."""
    rows = [dict(row) for row in rows]
    for row in rows:
        mine, theirs = row.get("tickwork_us"), row.get("apscheduler3_us")
        if isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs:
            row["tickwork ÷ APScheduler"] = f"{mine / theirs:.2f}x"
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(key)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        values = []
        for key in keys:
            value = row.get(key, "")
            values.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Facts about the machine and the docs page


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("tickwork", "asyncz", "apscheduler"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "?"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit,
    }


def render_docs(results: Results) -> str:
    meta = results.meta
    info = meta.get("machine", {})
    body, notes, missed = table(results)
    command = "python bench/run.py" + (" --quick" if results.quick else "")
    parts = [
        "# Performance",
        "",
        "tickwork, asyncz, APScheduler 3 and APScheduler 4 measured side by side by `bench/run.py`,",
        "each scenario on each library in a fresh process, and, where it applies, the floor: bare",
        "asyncio timers doing the least any asyncio scheduler must. This page is generated by",
        f"`{command} --write-docs`; edit the notes in `MISS_NOTES` in `bench/run.py`, not here.",
        "",
        f"- Date: {meta.get('date', '?')} ({'quick' if results.quick else 'full'} run, {meta.get('duration_s', 0):.0f} s)",
        f"- Machine: {info.get('cores')} cores ({info.get('cpu')}), {info.get('memory_gib')} GiB memory, {info.get('platform')}",
        f"- Python {info.get('python')}; tickwork {info.get('versions', {}).get('tickwork')} (commit {info.get('commit')}), "
        f"asyncz {info.get('versions', {}).get('asyncz')}, APScheduler {info.get('versions', {}).get('apscheduler')}, "
        "APScheduler 4.0.0a6 (in `bench/.venv-aps4`)",
        "- Commands: `make bench` (or `python bench/run.py`) for the full run, `python bench/run.py --quick` "
        "for a five-minute look, `--only add,burst` for some scenarios (`--only fleet,store_scale` "
        "for the tables of `bench/fleet_scale.py` and `bench/store_scale.py`); the peers are installed in "
        "`bench/.venv` only (APScheduler 4 in `bench/.venv-aps4`, since it cannot share a "
        "virtualenv with APScheduler 3), never as dependencies of tickwork.",
        "",
        "Ratios are tickwork's figure divided by the peer's (or the floor's): above 1 is better "
        "for rates, below 1 is better for memory, lateness and CPU. A row with several targets "
        "passes when every one that has its figures passes.",
        "",
        body,
        "",
    ]
    for section in extra_sections(results):
        parts += [section, ""]
    parts += [
        "## How each scenario is measured",
        "",
        "- **add**: a running `AsyncIOScheduler` with the memory store; one `add_task`/`add_job` "
        "call per interval task (1 h), timed until the loop has also run the wake-ups those "
        "calls queued (APScheduler and asyncz queue one per add). The 10,000-task row takes a "
        "quarter of a second, so it runs three rounds, the libraries taking turns, and shows "
        "each library's median round.",
        "- **memory**: RSS growth over adding the tasks to a running scheduler (letting the loop "
        "run every 1,000 adds), after `gc.collect()`, divided by the number of tasks.",
        "- **burst**: the tasks are interval tasks (1 h) whose next run time is the same instant; "
        "runs/s is the number of runs divided by the time from that instant to the last run. A "
        "coroutine sleeping 1 ms in a loop records the worst event-loop lag meanwhile. Missed "
        "runs are those each library reports with its default grace time (1 s in all three). "
        "CPU per run is the process's CPU time (all threads) from 0.1 s before that instant "
        "until the last run, per run due. tickwork runs with its run history off "
        "(`run_history=None`) in the rows so labelled, like for like with the peers, which "
        'keep no record of runs; the "run history on" rows run tickwork alone with its '
        "default history and show the peers' figures of the row above. With the history on, "
        "the CPU time runs until the last run's record is written: the history's thread "
        "writes every 0.5 s, after a burst this short is over, so runs/s alone would not "
        "show that work.",
        "- **precision**: a 50 ms interval coroutine task on a grid fixed by `start_at`; lateness "
        "is `time.time()` at the start of the run minus its grid point. The floor is a bare "
        "`loop.call_at` timer starting the same coroutine. Each row runs three rounds of 8 s, "
        "the floor taking turns with the libraries, and shows each one's round with the "
        "median p50; the bounds come from the floor's rounds in the same row.",
        "- **steady load**: 1,000 coroutine tasks every second; process CPU time (all "
        "threads, so the run history's writer too) over the window, per 1,000 runs; tickwork "
        "with its run history off, then on, as for the burst. On one grid, the scheduler "
        "wakes once a second and handles the 1,000 runs in one batch (this measures "
        "batching); with the phases spread evenly over the second (task i at i/1,000 s past "
        "each second), it wakes 1,000 times a second for one run each, as in a real program. "
        "The spread row runs three rounds, the libraries and the floor taking turns, and "
        "shows each one's median round.",
        "- **floor**: bare `loop.call_at` timers, one per run, at the same instants, each "
        "starting the same coroutine as an `asyncio.Task` (kept in a set until done): the "
        "least any asyncio scheduler does. It takes turns with the libraries in the asyncio "
        "burst (three rounds, median), the steady loads and the precision rows.",
        "- **APScheduler 4.0.0a6**: an `AsyncScheduler` with its defaults (memory data store, "
        "local event broker, at most 100 jobs at once) started in the background on the same "
        "loop; one `add_schedule` per task. Left out of the SQL rows.",
        "- **SQL**: a fresh SQLite file / PostgreSQL database per process; adds are timed with an "
        "explicit first run time for every library; the burst lets every run happen however late "
        "(`mistrigger_grace_time=None` / `misfire_grace_time=None`), since with the default 1 s "
        "a slow store makes peers skip the whole burst.",
        "",
    ]
    parts += [DESIGN_NOTES]
    if missed:
        parts += ["## Missed targets", ""]
        by_note: dict[str, list[str]] = {}
        for key in missed:
            label = next(row.label for row in ROWS if row.key == key).strip()
            note = MISS_NOTES.get(
                key, "No analysis written yet: add one to `MISS_NOTES` in `bench/run.py`."
            )
            by_note.setdefault(note, []).append(label)
        for note, labels in by_note.items():
            parts += [f"### {'; '.join(labels)}", "", note, ""]
    if notes:
        parts += ["## Skipped or failed", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------
# Main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and windows (about a minute)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated groups: "
        + ",".join(sorted({j.group for j in JOBS}))
        + " (or job keys)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help=f"regenerate {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument("--load", type=Path, help="use a saved results JSON instead of running")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    if args.load:
        saved = json.loads(args.load.read_text())
        results = Results(quick=saved["quick"], data=saved["data"], meta=saved["meta"])
    else:
        ensure_venv(argv)
        results = Results(quick=args.quick)
        only = {part.strip() for part in args.only.split(",") if part.strip()}
        unknown = only - {j.group for j in JOBS} - {j.key for j in JOBS}
        if unknown:
            parser.error(f"unknown --only value(s) {sorted(unknown)}")
        started = time.perf_counter()
        results.meta["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        results.meta["machine"] = machine()
        chosen = {j.key for j in JOBS if not only or j.group in only or j.key in only}
        chosen |= {PEERS_FROM[key] for key in chosen if key in PEERS_FROM}
        for job in JOBS:
            if job.key in chosen:
                run_job(job, results, verbose=not args.quiet)
        results.meta["duration_s"] = time.perf_counter() - started
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{stamp}{'-quick' if args.quick else ''}.json"
        path.write_text(
            json.dumps(
                {"quick": results.quick, "data": results.data, "meta": results.meta}, indent=1
            )
        )
        print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)

    body, notes, _ = table(results)
    print(body)
    for section in extra_sections(results):
        print("\n" + section)
    if notes:
        print("\nskipped or failed:\n" + "\n".join(f"- {note}" for note in notes))
    if args.write_docs:
        DOCS.parent.mkdir(exist_ok=True)
        DOCS.write_text(render_docs(results))
        print(f"\nwrote {DOCS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
