"""Bad data under a RedisStore's prefix is skipped and repaired, never a busy loop or a
stopped store.

Found in production: a run-time entry without its task made the store report that past
time as its next run time on every pass (a busy loop: 3.7 CPU-seconds per 6 s), and a
claim holding garbage made a Lua script fail on every pass (the store stopped). Each test
plants one kind of bad entry with raw Redis commands, then checks that the store repairs
it, logs it once, and still hands out the good task next to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import servers
from storetest_funcs import NOW, at, make_task, noop

from tickwork.events import TASK_EXECUTED
from tickwork.exceptions import ConfigurationError
from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores.redis import RedisStore

pytestmark = pytest.mark.external_service("redis")

LEASE = timedelta(seconds=30)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(servers.redis_url())
    yield client
    client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    with servers.redis_prefix() as prefix:
        yield prefix


@pytest.fixture
def store(client: redis.Redis, prefix: str) -> Iterator[RedisStore]:
    store = RedisStore(client=client, prefix=prefix)
    store.start("default")
    yield store
    store.shutdown()


def lines_naming(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    """The log messages that contain every one of ``words``."""
    messages = [record.getMessage() for record in caplog.records]
    return [message for message in messages if all(word in message for word in words)]


def ids(tasks: list[Any]) -> list[str]:
    return [task.id for task in tasks]


# -- run-time entries without a task ------------------------------------------------------


@pytest.mark.parametrize("first_call", ["next_run_time", "acquire", "due"])
def test_a_dangling_run_time_entry_is_removed_and_logged_once(
    store: RedisStore, client: redis.Redis, caplog: pytest.LogCaptureFixture, first_call: str
) -> None:
    client.zadd(store.run_times_key, {"ghost": at(-10).timestamp()})
    store.add_task(make_task("a", at(-1)))
    with caplog.at_level(logging.WARNING, logger=store.logger.name):
        if first_call == "next_run_time":
            store.get_next_run_time()
        elif first_call == "acquire":
            store.release_tasks("other", store.acquire_due_tasks(NOW, 1, "other", LEASE), [])
        else:
            store.get_due_tasks(NOW, limit=1)
        assert client.zscore(store.run_times_key, "ghost") is None
        # The good task is what every read sees now, limit 1 included.
        assert store.get_next_run_time() == at(-1)
        assert ids(store.get_due_tasks(NOW, limit=1)) == ["a"]
        assert ids(store.acquire_due_tasks(NOW, 1, "one", LEASE)) == ["a"]
        assert store.get_next_run_time() == NOW + LEASE  # claimed: when its claim expires
    assert len(lines_naming(caplog, "'ghost'")) == 1, caplog.text


def test_a_dangling_entry_is_not_reported_as_the_next_run_time(
    store: RedisStore, client: redis.Redis
) -> None:
    client.zadd(store.run_times_key, {"ghost": at(-10).timestamp()})
    assert [store.get_next_run_time() for _ in range(3)] == [None, None, None]
    assert store.acquire_due_tasks(NOW, 10, "one", LEASE) == []


def test_a_dangling_entry_among_many_due_ones_does_not_hide_a_task(
    store: RedisStore, client: redis.Redis
) -> None:
    # The scripts page through the sorted set: removing entries while paging must not
    # skip the entries after them.
    tasks = [f"t{n:03}" for n in range(0, 100, 2)]
    store.add_tasks([make_task(task_id, at(-100 + int(task_id[1:]))) for task_id in tasks])
    ghosts = {f"ghost{n:03}": at(-100 + n).timestamp() for n in range(1, 100, 2)}
    client.zadd(store.run_times_key, ghosts)
    assert ids(store.get_due_tasks(NOW, limit=10)) == tasks[:10]
    assert ids(store.acquire_due_tasks(NOW, 50, "one", LEASE)) == tasks
    # Every ghost before the last task is gone; the one after it was never reached.
    assert client.zrange(store.run_times_key, 0, -1) == [t.encode() for t in tasks] + [b"ghost099"]


async def test_a_dangling_entry_does_not_make_a_scheduler_spin(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    client.zadd(f"{prefix}:run_times", {"ghost": time.time() - 60})
    executed: list[Any] = []
    scheduler = AsyncIOScheduler(stores={"default": RedisStore(servers.redis_url(), prefix=prefix)})
    scheduler.add_listener(executed.append, TASK_EXECUTED)
    async with scheduler:
        scheduler.add_task(noop, "interval", seconds=0.4, id="good")
        cpu = time.process_time()
        await asyncio.sleep(2)
        cpu = time.process_time() - cpu
    # Idle but for one run every 0.4 s; the busy loop took 1.2 CPU-seconds here.
    assert cpu < 0.5, f"{cpu:.2f} CPU-seconds in 2 s"
    assert len(executed) >= 3
    assert client.zscore(f"{prefix}:run_times", "ghost") is None
    assert len(lines_naming(caplog, "'ghost'")) == 1, caplog.text


# -- malformed claims ---------------------------------------------------------------------

MALFORMED_CLAIMS = [
    b"garbage",
    b"",
    b"soon someone",
    b"1767268800.0 ",  # no owner
    b"inf someone",  # never expires
    b"nan someone",
    b"\xff\xfe\x00 \x01",
]


@pytest.mark.parametrize("claim", MALFORMED_CLAIMS)
def test_a_malformed_claim_is_free_and_overwritten(
    store: RedisStore, client: redis.Redis, caplog: pytest.LogCaptureFixture, claim: bytes
) -> None:
    store.add_tasks([make_task("a", at(-2)), make_task("b", at(-1))])
    client.hset(store.claims_key, "a", claim)
    with caplog.at_level(logging.WARNING, logger=store.logger.name):
        assert store.get_next_run_time() == at(-2)
        assert ids(store.acquire_due_tasks(NOW, 10, "one", LEASE)) == ["a", "b"]
        expires, _, owner = client.hget(store.claims_key, "a").partition(b" ")
        assert (float(expires), owner) == ((NOW + LEASE).timestamp(), b"one")
        assert store.get_next_run_time() == NOW + LEASE
    assert len(lines_naming(caplog, "'a'", "claim")) == 1, caplog.text


@pytest.mark.parametrize("claim", MALFORMED_CLAIMS[:3])
def test_a_write_back_over_a_malformed_claim_goes_through(
    store: RedisStore, client: redis.Redis, claim: bytes
) -> None:
    task = make_task("a", at(-1))
    store.add_task(task)
    client.hset(store.claims_key, "a", claim)
    task.next_run_time = at(4)
    assert store.release_tasks("one", [task], [], runs=[(task, at(-1))]) == set()
    assert client.hexists(store.claims_key, "a") == 0
    assert store.get_next_run_time() == at(4)
    assert store.count_runs(["a"]) == {"a": 1}


# -- run times Python cannot read ---------------------------------------------------------


@pytest.mark.parametrize("score", [float("inf"), float("-inf"), 1e300, -1e300])
def test_a_score_outside_the_datetime_range_is_rewritten_from_the_task(
    store: RedisStore, client: redis.Redis, caplog: pytest.LogCaptureFixture, score: float
) -> None:
    store.add_tasks([make_task("a", at(5)), make_task("b", at(10)), make_task("p", None)])
    client.zadd(store.run_times_key, {"a": score, "p": score})
    with caplog.at_level(logging.WARNING, logger=store.logger.name):
        assert store.get_next_run_time() == at(5)
        assert store.get_next_run_time() == at(5)
    assert client.zscore(store.run_times_key, "a") == at(5).timestamp()
    assert client.zscore(store.run_times_key, "p") is None  # a paused task has no entry
    assert store.lookup_task("p") is not None  # and is not deleted
    assert len(lines_naming(caplog, "'a'", "run time")) == 1, caplog.text


# -- run records --------------------------------------------------------------------------


def test_a_malformed_run_count_is_reset_not_fatal(
    store: RedisStore, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    task = make_task("a", at(-1))
    store.add_task(task)
    counts_key = f"{store.prefix}:run_counts"
    client.hset(counts_key, "a", "garbage")
    with caplog.at_level(logging.WARNING, logger=store.logger.name):
        assert store.count_runs(["a"]) == {}
        assert store.release_tasks("one", [task], [], runs=[(task, at(-1))]) == set()
        assert store.count_runs(["a"]) == {"a": 1}
        client.hset(counts_key, "a", "also garbage")
        store.finish_runs("one", [("a", at(-1))])
        assert store.count_runs(["a"]) == {}
    assert client.hexists(counts_key, "a") == 0
    assert len(lines_naming(caplog, "'a'", "count")) == 2, caplog.text  # two plantings


def test_malformed_and_dangling_run_records_are_dropped_on_take_over(
    store: RedisStore, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_task("good", at(-1))
    store.add_task(good)
    store.release_tasks("dead", [good], [], runs=[(good, at(-1))], runs_expire=at(-0.5))
    runs, owners, leases, counts = (
        f"{store.prefix}:{name}" for name in ("runs", "run_owners", "run_leases", "run_counts")
    )
    dangling = f"{at(-2).timestamp()!r}|lost"  # its record's task copy is gone
    for key in ("garbage", "not-a-time|x", "inf|x", dangling):
        client.zadd(leases, {key: at(-3).timestamp()})
        client.hset(owners, key, "dead")
    client.hset(runs, "garbage", b"blob")
    client.hset(runs, "not-a-time|x", b"blob")
    client.hset(runs, "inf|x", b"blob")
    client.hset(counts, "lost", 1)
    with caplog.at_level(logging.WARNING, logger=store.logger.name):
        taken = store.take_over_runs(NOW, 10, "two", NOW + LEASE)
        assert store.take_over_runs(NOW + 2 * LEASE, 10, "three", NOW + 3 * LEASE) != []
    assert [(run.task.id, run.run_time, run.owner) for run in taken] == [("good", at(-1), "dead")]
    assert client.zrange(leases, 0, -1) == [f"{at(-1).timestamp()!r}|good".encode()]
    assert client.hkeys(runs) == [f"{at(-1).timestamp()!r}|good".encode()]
    assert sorted(client.hkeys(owners)) == [f"{at(-1).timestamp()!r}|good".encode()]
    assert store.count_runs(["lost", "good"]) == {"good": 1}
    for key in ("garbage", "not-a-time|x", "inf|x", dangling):
        assert len(lines_naming(caplog, repr(key))) == 1, caplog.text


def test_a_malformed_schema_version_is_a_configuration_error(
    client: redis.Redis, prefix: str
) -> None:
    client.hset(f"{prefix}:meta", "schema_version", "two")
    with pytest.raises(ConfigurationError, match="'two'"):
        RedisStore(client=client, prefix=prefix).start("default")


def test_repairs_leave_good_tasks_alone(store: RedisStore) -> None:
    # Nothing to repair: nothing removed, nothing logged, the usual answers.
    store.add_tasks([make_task("a", at(-1)), make_task("b", at(3)), make_task("p", None)])
    assert store.get_next_run_time() == at(-1)
    assert ids(store.acquire_due_tasks(NOW, 10, "one", LEASE)) == ["a"]
    assert ids(store.get_all_tasks()) == ["a", "b", "p"]
    assert store.get_next_run_time() == NOW + LEASE
    assert store._repairs_logged == set()
