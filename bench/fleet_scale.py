"""How a fleet scales: a burst of due tasks in one shared store, processed by 1, 2 and 4
schedulers (separate processes).

    python bench/fleet_scale.py                 # 10,000 tasks; PostgreSQL and Redis
    python bench/fleet_scale.py --quick         # 2,000 tasks
    python bench/fleet_scale.py --stores redis --members 1,2 --n 5000 --json

For each store and each number of members: a fresh table (or key prefix), the members
started and ready, then ``n`` interval tasks (1 h, no grace limit) added in one
``add_tasks`` call, all due at one instant T a little later. Each member writes every
run it finishes (task id, scheduled time, wall time) to a file of its own; the burst is
over when ``n`` distinct runs are in. Reported per configuration:

* runs/s: distinct runs divided by the time from T to the last run;
* duplicates: runs of one (task, scheduled time) finished more than once (must be 0);
  missing: runs never seen (must be 0);
* what bounds the scaling: the members' claims (``acquire_due_tasks`` calls), how many
  came back empty (the rows were another member's: ``SKIP LOCKED`` or the Redis script),
  the median time of a claim and of a write-back (``release_tasks``), the tasks per
  claim, and the share of each member's burst spent waiting on the store.

The run history is off in the members (``run_history=None``): this measures the claim
path. PostgreSQL works in a database of its own (``tickwork_bench_<random>``, dropped
afterwards), Redis under a key prefix of its own (deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/0"


def tick() -> None:
    """The task: does nothing; the member's listener records the run."""


# ---------------------------------------------------------------------------------------
# A member (``python fleet_scale.py member ...``)


def timed_store(kind: str, location: str, name: str) -> Any:
    """The store, with its claim and write-back timed (a subclass: the member's own
    bookkeeping, not part of tickwork)."""
    from tickwork.stores.redis import RedisStore
    from tickwork.stores.sqlalchemy import SQLAlchemyStore

    base: type[Any] = SQLAlchemyStore if kind == "postgresql" else RedisStore

    class Timed(base):  # type: ignore[misc,valid-type]
        claims: list[tuple[float, int]] = []  # (seconds, tasks claimed)
        releases: list[float] = []

        def acquire_due_tasks(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            tasks = super().acquire_due_tasks(*args, **kwargs)
            self.claims.append((time.perf_counter() - started, len(tasks)))
            return tasks

        def release_tasks(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().release_tasks(*args, **kwargs)
            finally:
                self.releases.append(time.perf_counter() - started)

    if kind == "postgresql":
        return Timed(location, tablename=name)
    return Timed(location, prefix=name)


async def member(args: argparse.Namespace, out: TextIO) -> dict[str, Any]:
    """Run one member until SIGTERM, writing its runs to ``out``; its claim figures."""
    from tickwork.events import TASK_EXECUTED, TASK_MISSED
    from tickwork.schedulers import AsyncIOScheduler

    store = timed_store(args.kind, args.location, args.name)
    scheduler = AsyncIOScheduler(
        stores={"default": store},
        timezone="UTC",
        run_history=None,
        batch_size=args.batch_size,
    )
    lines: list[str] = []

    def record(event: Any) -> None:
        code = "EXE" if event.code == TASK_EXECUTED else "MIS"
        lines.append(
            f"{code} {event.task_id} {event.scheduled_run_time.timestamp()!r} {time.time()!r}\n"
        )

    scheduler.add_listener(record, TASK_EXECUTED | TASK_MISSED)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    cpu_at_ready = time.process_time()
    print("ready", flush=True)
    while not stop.is_set():
        # Hand the lines over in batches: a write per run would cost more than the run.
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
        out.writelines(lines)
        lines.clear()
        out.flush()
    cpu_s = time.process_time() - cpu_at_ready  # (before the shutdown: idle after the burst)
    await scheduler.shutdown_async()
    out.writelines(lines)
    claims = store.claims
    return {
        "cpu_s": round(cpu_s, 4),
        "claims": len(claims),
        "empty_claims": sum(1 for _, count in claims if count == 0),
        "claimed": sum(count for _, count in claims),
        "claim_s": [round(duration, 6) for duration, count in claims if count],
        "release_s": [round(duration, 6) for duration in store.releases],
    }


# ---------------------------------------------------------------------------------------
# The coordinator


@contextmanager
def postgres() -> Iterator[str]:
    import psycopg

    name = f"tickwork_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def redis_prefix() -> Iterator[str]:
    import redis

    prefix = f"tickwork_bench_fleet_{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    client.ping()
    try:
        yield prefix
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def seed(kind: str, location: str, name: str, n: int, due: datetime) -> float:
    """Add ``n`` interval tasks due at ``due`` in one ``add_tasks`` call; its seconds."""
    from tickwork.stores.redis import RedisStore
    from tickwork.stores.sqlalchemy import SQLAlchemyStore
    from tickwork.tasks import Task
    from tickwork.triggers import IntervalTrigger

    store: Any = (
        SQLAlchemyStore(location, tablename=name)
        if kind == "postgresql"
        else RedisStore(location, prefix=name)
    )
    store.start("default")
    trigger = IntervalTrigger(hours=1)
    tasks = [
        Task(
            "fleet_scale:tick",
            trigger,
            id=f"t{index:06d}",
            coalesce=True,
            max_instances=1,
            mistrigger_grace_time=None,
            next_run_time=due,
        )
        for index in range(n)
    ]
    started = time.perf_counter()
    store.add_tasks(tasks)
    took = time.perf_counter() - started
    store.shutdown()
    return took


def run_fleet(
    kind: str,
    location: str,
    base_name: str,
    members: int,
    n: int,
    batch_size: int,
    workdir: Path,
) -> dict[str, Any]:
    name = f"{base_name}_{members}_{uuid.uuid4().hex[:6]}"
    outs = [workdir / f"{name}-{index}.txt" for index in range(members)]
    env = dict(os.environ, PYTHONPATH=str(BENCH) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "fleet_scale.py"),
                "member",
                kind,
                location,
                name,
                str(out),
                "--batch-size",
                str(batch_size),
            ],
            stdout=subprocess.PIPE,
            stderr=open(str(out) + ".err", "w"),  # noqa: SIM115 (closed with the process)
            text=True,
            env=env,
        )
        for out in outs
    ]
    try:
        for proc, out in zip(procs, outs, strict=True):
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                error = Path(str(out) + ".err").read_text().strip().splitlines()[-3:]
                raise RuntimeError(f"a member did not start: {' | '.join(error)}")
        # Members look at the store once a second: T leaves them two looks after the seed.
        due_wall = time.time() + 2.5 + n * 40e-6
        due = datetime.fromtimestamp(due_wall, UTC)
        seed_s = seed(kind, location, name, n, due)
        if time.time() > due_wall - 1.1:
            raise RuntimeError(f"seeding {n} tasks took {seed_s:.1f} s, past the due instant")
        deadline = due_wall + max(60.0, n / 100)
        while time.time() < deadline:
            time.sleep(0.2)
            if sum(count_lines(out) for out in outs) >= n:
                break
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return summarize(outs, n, due_wall, members, seed_s)


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def summarize(
    outs: list[Path], n: int, due_wall: float, members: int, seed_s: float
) -> dict[str, Any]:
    seen: Counter[tuple[str, str]] = Counter()
    last = due_wall
    missed = 0
    per_member = []
    claims: list[float] = []
    releases: list[float] = []
    stats_all = []
    for out in outs:
        count = 0
        for line in out.read_text().splitlines():
            code, task_id, scheduled, wall = line.split()
            if code == "MIS":
                missed += 1
                continue
            seen[(task_id, scheduled)] += 1
            last = max(last, float(wall))
            count += 1
        per_member.append(count)
        stats_path = Path(str(out) + ".stats")
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            stats_all.append(stats)
            claims += stats["claim_s"]
            releases += stats["release_s"]
    elapsed = last - due_wall
    distinct = len(seen)
    store_share = [
        (sum(stats["claim_s"]) + sum(stats["release_s"])) / elapsed if elapsed > 0 else None
        for stats in stats_all
    ]
    return {
        "members": members,
        "n": n,
        "runs_per_s": distinct / elapsed if elapsed > 0 else 0.0,
        "elapsed_s": elapsed,
        "duplicates": sum(count - 1 for count in seen.values()),
        "missing": n - distinct,
        "missed": missed,
        "runs_per_member": per_member,
        "claims": sum(stats["claims"] for stats in stats_all),
        "empty_claims": sum(stats["empty_claims"] for stats in stats_all),
        "tasks_per_claim": (
            sum(stats["claimed"] for stats in stats_all)
            / max(1, sum(stats["claims"] - stats["empty_claims"] for stats in stats_all))
        ),
        "claim_ms": statistics.median(claims) * 1000 if claims else None,
        "release_ms": statistics.median(releases) * 1000 if releases else None,
        "store_share": [round(share, 2) if share is not None else None for share in store_share],
        # CPU of all members (from ready to the end of the burst, idle polls included) per
        # run: on a machine whose cores the members share with the server, this bounds them.
        "cpu_us_per_run": (
            round(sum(stats.get("cpu_s", 0.0) for stats in stats_all) / max(1, distinct) * 1e6, 1)
        ),
        "seed_s": seed_s,
    }


@contextmanager
def location_of(kind: str) -> Iterator[tuple[str, str]]:
    """(store location, base of the table name or key prefix) for this run."""
    if kind == "postgresql":
        with postgres() as url:
            yield url, "fleet"
    else:
        with redis_prefix() as prefix:
            yield REDIS_URL, prefix


def run(
    quick: bool = False,
    stores: tuple[str, ...] = ("postgresql", "redis"),
    members: tuple[int, ...] = (1, 2, 4),
    n: int | None = None,
    batch_size: int = 256,
    log: Any = None,
) -> dict[str, Any]:
    """Every configuration; the result bench/run.py shows (``rows``)."""
    n = n if n is not None else (2_000 if quick else 10_000)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tickwork-bench-fleet-") as tmp:
        for kind in stores:
            try:
                with location_of(kind) as (location, base_name):
                    base: float | None = None
                    for count in members:
                        row = run_fleet(kind, location, base_name, count, n, batch_size, Path(tmp))
                        row["store"] = kind
                        if count == 1:
                            base = row["runs_per_s"]
                        row["speedup"] = row["runs_per_s"] / base if base else None
                        rows.append(row)
                        if log:
                            log(row)
            except Exception as exc:  # an unreachable server: say so and go on
                rows.append({"store": kind, "error": f"{type(exc).__name__}: {exc}"})
    return {
        "n": n,
        "batch_size": batch_size,
        "rows": rows,
        "note": (
            "Members run with the run history off. Claims: `acquire_due_tasks` calls of all "
            "members (empty: none of the due rows was free: another member held them); "
            "claim and release ms: medians of one call, timed in the member around the "
            "store's method; the store's share: the time a member spent in those calls "
            "over the burst's duration (a member's pass waits for them, so near 100 % the "
            "members are bound by round trips to the store, not by running tasks)."
        ),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "member":
        parser = argparse.ArgumentParser()
        parser.add_argument("kind", choices=["postgresql", "redis"])
        parser.add_argument("location")
        parser.add_argument("name")
        parser.add_argument("out")
        parser.add_argument("--batch-size", type=int, default=256)
        args = parser.parse_args(argv[1:])
        profile = os.environ.get("FLEET_PROFILE")  # a cProfile of each member, next to its runs
        with open(args.out, "w") as out:
            if profile:
                import cProfile

                from tickwork.schedulers._gate import StoreGate

                # cProfile sees one thread: the loop's, and the store's batches (they run
                # on the gate's thread) in a profile of their own.
                profiler, batches = cProfile.Profile(), cProfile.Profile()
                process_batch = StoreGate.process_batch

                def profiled(gate: Any, *a: Any) -> Any:
                    return batches.runcall(process_batch, gate, *a)

                StoreGate.process_batch = profiled  # type: ignore[method-assign]
                stats = profiler.runcall(asyncio.run, member(args, out))
                name = Path(args.out).name
                profiler.dump_stats(os.path.join(profile, name + ".loop.prof"))
                batches.dump_stats(os.path.join(profile, name + ".store.prof"))
            else:
                stats = asyncio.run(member(args, out))
        Path(args.out + ".stats").write_text(json.dumps(stats))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 tasks instead of 10,000")
    parser.add_argument("--stores", default="postgresql,redis")
    parser.add_argument("--members", default="1,2,4")
    parser.add_argument("--n", type=int)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(
        quick=args.quick,
        stores=tuple(part.strip() for part in args.stores.split(",") if part.strip()),
        members=tuple(int(part) for part in args.members.split(",")),
        n=args.n,
        batch_size=args.batch_size,
        log=lambda row: print(json.dumps(row), file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=1) if args.json else json.dumps(result["rows"]))


if __name__ == "__main__":
    main(sys.argv[1:])
