"""RedisStore specifics: key layout, schema version, client checks, failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import servers
from storetest_funcs import NOW, at, make_task

from tickwork.exceptions import ConfigurationError, StoreUnavailableError
from tickwork.stores.redis import SCHEMA_VERSION, RedisStore

pytestmark = pytest.mark.external_service("redis")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(servers.redis_url())
    yield client
    client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    with servers.redis_prefix() as prefix:
        yield prefix


def test_tasks_live_in_a_hash_and_run_times_in_a_sorted_set(
    client: redis.Redis, prefix: str
) -> None:
    store = RedisStore(client=client, prefix=prefix)
    store.start("default")
    store.add_tasks([make_task("a", at(1)), make_task("paused", None)])
    assert sorted(client.hkeys(f"{prefix}:tasks")) == [b"a", b"paused"]
    assert client.zrange(f"{prefix}:run_times", 0, -1, withscores=True) == [
        (b"a", at(1).timestamp())
    ]
    assert client.hget(f"{prefix}:meta", "schema_version") == str(SCHEMA_VERSION).encode()
    store.remove_all_tasks()
    assert client.exists(f"{prefix}:tasks", f"{prefix}:run_times") == 0
    store.shutdown()
    client.ping()  # a client we passed in is not closed by the store


def test_a_newer_schema_is_refused(client: redis.Redis, prefix: str) -> None:
    client.hset(f"{prefix}:meta", "schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(ConfigurationError, match="upgrade tickwork"):
        RedisStore(client=client, prefix=prefix).start("default")


def test_a_decoding_client_is_refused(prefix: str) -> None:
    client = redis.Redis.from_url(servers.redis_url(), decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisStore(client=client, prefix=prefix)
    client.close()


def test_scripts_survive_a_script_cache_flush(client: redis.Redis, prefix: str) -> None:
    store = RedisStore(client=client, prefix=prefix)
    store.start("default")
    store.add_task(make_task("a", at(-1)))
    client.script_flush()  # what a server restart does to loaded scripts
    store.add_task(make_task("b", at(-2)))
    assert [task.id for task in store.get_due_tasks(NOW)] == ["b", "a"]
    store.shutdown()


def test_an_unreachable_server_raises_store_unavailable() -> None:
    # Port 1 on the loopback refuses connections at once: a real failure, no mock.
    store = RedisStore("redis://127.0.0.1:1/0", prefix="unreachable")
    with pytest.raises(StoreUnavailableError, match="could not start") as info:
        store.start("default")
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(StoreUnavailableError, match="query due tasks"):
        store.get_due_tasks(NOW)
    store.shutdown()
