"""RedisRunLog specifics: its keys, damaged values and index entries, and clients that
decode responses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import servers
from run_log_support import T0, LogSpec, record

from tickwork.runs import RunRecord
from tickwork.runs._records import encode_record
from tickwork.runs.base import RunLog
from tickwork.runs.redis import RedisRunLog

LOG_KINDS = ("redis",)
NOW = T0 + timedelta(days=1)


@pytest.fixture
def client(log_spec: LogSpec) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(servers.redis_url())
    yield made
    made.close()


def rlog(log: RunLog) -> RedisRunLog:
    assert isinstance(log, RedisRunLog)
    return log


def keys(client: redis.Redis, prefix: str) -> set[str]:
    return {key.decode() for key in client.scan_iter(match=f"{prefix}*")}


def test_keys_live_under_the_prefix_and_go_when_empty(log: RunLog, client: redis.Redis) -> None:
    prefix = rlog(log).prefix
    log.write([record("a", 0), record("a", 1, "running"), record("b", 2, "error")])
    assert keys(client, prefix) == {
        f"{prefix}:run_log:{name}"
        for name in (
            "records",
            "by_time",
            "final",
            "tasks",
            "task:a",
            "task:b",
            "task_final:a",
            "task_final:b",
        )
    }
    assert log.prune(NOW, 60, None) == 2
    # b is gone entirely; a keeps its running record.
    assert keys(client, prefix) == {
        f"{prefix}:run_log:{name}" for name in ("records", "by_time", "tasks", "task:a")
    }
    log.write([record("a", 1, "success")])
    assert log.prune(NOW, 60, None) == 1
    assert keys(client, prefix) == set()


def test_damaged_values_are_skipped_and_logged_once(
    log: RunLog, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    runs = rlog(log)
    log.write([record("a", m) for m in range(5)] + [record("a", 5, "running")])
    client.hset(runs.records_key, record("a", 5).run_id, b"\xff garbage")
    client.hset(runs.records_key, record("a", 4).run_id, encode_record(record("a", 0)))
    client.hset(runs.records_key, record("a", 3).run_id, b'{"v": 1, "run_id": 3}')
    client.hdel(runs.records_key, record("a", 2).run_id)  # its index entries stay
    with caplog.at_level(logging.WARNING, logger="tickwork.runs.redis"):
        assert [r.scheduled_run_time.minute for r in log.query(limit=2)] == [1, 0]
        assert [r.scheduled_run_time.minute for r in log.query("a")] == [1, 0]
        assert log.get(record("a", 5).run_id) is None
    warnings = [r for r in caplog.records if "damaged run record" in r.getMessage()]
    assert len(warnings) == 5  # 4 damaged values + 1 listed-but-missing, per key
    assert "not stored" in caplog.text
    # Finality is the final set's to say: a damaged final record is never replaced,
    # a damaged running one is, like any running record.
    log.write([record("a", 4, "error"), record("a", 5, "timeout")])
    assert log.get(record("a", 4).run_id) is None
    assert log.get(record("a", 5).run_id) == record("a", 5, "timeout")
    # Retention deletes damaged records and dangling entries too, and leaves nothing.
    assert log.prune(NOW, 60, None) == 5  # 0, 1, 3, 4, 5 (2 had no record left)
    assert keys(client, runs.prefix) == set()


def test_a_record_whose_task_cannot_be_read_is_still_pruned(
    log: RunLog, client: redis.Redis
) -> None:
    runs = rlog(log)
    odd = RunRecord(
        run_id="odd",  # not make_run_id's form: the task is not in it either
        task_id="a",
        task_name="a",
        scheduled_run_time=T0,
        outcome="success",
    )
    log.write([odd, record("a", 1)])
    client.hset(runs.records_key, "odd", b"not json")
    assert log.prune(NOW, 60, None) == 2
    # Its task's entries stayed (the task was unknown) until the task's own retention.
    assert client.zcard(f"{runs.prefix}:run_log:task_final:a") == 1
    assert log.query("a") == []
    assert log.prune(NOW, None, 0) == 0
    assert keys(client, runs.prefix) == set()


def test_a_client_that_decodes_responses_works_too(log_spec: LogSpec) -> None:
    assert log_spec.prefix is not None
    client = redis.Redis.from_url(servers.redis_url(), decode_responses=True)
    try:
        log = RedisRunLog(client, log_spec.prefix)
        log.write([record("a", 0, "running"), record("b", 1)])
        log.write([record("a", 0, "error")])
        assert log.query() == [record("b", 1), record("a", 0, "error")]
        assert log.get(record("a", 0).run_id) == record("a", 0, "error")
        assert log.prune(NOW, None, 0) == 2
    finally:
        client.close()
