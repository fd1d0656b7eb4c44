"""Run records in Redis: one hash of JSON records by run id, and sorted sets that order them.

Keys, for ``prefix="tickwork"`` (the store's prefix: the names do not collide with the
store's own keys):

* ``tickwork:run_log:records``: hash, run id -> the record as JSON (the form of
  :func:`tickwork.runs.file.encode_record`);
* ``tickwork:run_log:by_time``: sorted set, every run id scored by its scheduled run
  time (UTC epoch seconds; equal scores order by run id, as :meth:`RunLog.query` wants);
* ``tickwork:run_log:final``: sorted set, the run ids whose record is final, likewise;
* ``tickwork:run_log:task:<task id>`` and ``tickwork:run_log:task_final:<task id>``: the
  same two sets for one task;
* ``tickwork:run_log:tasks``: set of the task ids that have records (retention walks it).

The rule (the first final outcome wins) is enforced by a Lua script, which Redis runs
atomically: for each record it writes the record unless the run is in the ``final``
set already, and adds a final record to the ``final`` sets in the same step. Being in
that set is what makes a record final for the rule, not its JSON: a damaged final
record is never replaced, a damaged running one is. Racing writers are serialised by
Redis; the second one sees the first one's outcome.

What is atomic: each script call, that is each chunk of up to 500 records of a
:meth:`~RedisRunLog.write` (a batch is not one transaction beyond that), and each
batch of up to 500 deletions of :meth:`~RedisRunLog.prune` (retention never blocks the
server for long). A record and its set entries are always written and deleted together.

Every key a script touches is passed to it (the task ids are known to the caller), so
with a hash tag in the prefix (``prefix="{tickwork}"``) the log works on Redis Cluster.
Scores are doubles: run times are ordered exactly to the microsecond until the year
2106. Records that do not read back (not JSON, missing fields, a set entry without its
record) are skipped by reads and logged once; a damaged record whose task cannot be
read is removed from the global sets by retention, and its task's set entry is dropped
when that task is pruned. Redis errors are not translated: the store turns them into
:class:`~tickwork.exceptions.StoreUnavailableError`. The client is the caller's
(``decode_responses`` either way); :meth:`~RedisRunLog.close` leaves it open.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import redis

from tickwork.runs import RunRecord
from tickwork.runs._records import (
    DamagedRecord,
    DamageLog,
    apply_rule,
    decode_record,
    encode_record,
    task_of_run_id,
)
from tickwork.runs.base import RunLog

__all__ = ["RedisRunLog"]

# Records per write script, ids per deletion script: a script blocks the server while it
# runs, so each stays short (about a millisecond).
_BATCH = 500
# Run ids read per page of a query that filters by outcome (and skips the others).
_PAGE = 1000

# KEYS: records, by_time, final, tasks; then for each record its task's two sets.
# ARGV: for each record: run id, task id, JSON, score, "1" if final else "0".
# Returns how many records were written (the others met a final record).
_WRITE = """
local written = 0
for i = 1, #ARGV, 5 do
    local id, task, score = ARGV[i], ARGV[i + 1], ARGV[i + 3]
    local k = 4 + 2 * ((i - 1) / 5)
    if not redis.call('ZSCORE', KEYS[3], id) then
        redis.call('HSET', KEYS[1], id, ARGV[i + 2])
        redis.call('ZADD', KEYS[2], score, id)
        redis.call('ZADD', KEYS[k + 1], score, id)
        redis.call('SADD', KEYS[4], task)
        if ARGV[i + 4] == '1' then
            redis.call('ZADD', KEYS[3], score, id)
            redis.call('ZADD', KEYS[k + 2], score, id)
        end
        written = written + 1
    end
end
return written
"""

# KEYS: records, by_time, final, tasks; then for each run id its task's two sets.
# ARGV: for each run id: run id, "1" if its task is known else "0", task id.
# Deletes each run that is final (in the final set, or in its task's final set: an
# entry whose record is gone); returns how many records were deleted.
_DELETE = """
local deleted = 0
for i = 1, #ARGV, 3 do
    local id, known, task = ARGV[i], ARGV[i + 1] == '1', ARGV[i + 2]
    local k = 4 + 2 * ((i - 1) / 3)
    local final = redis.call('ZSCORE', KEYS[3], id)
    if not final and known then final = redis.call('ZSCORE', KEYS[k + 2], id) end
    if final then
        deleted = deleted + redis.call('HDEL', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZREM', KEYS[3], id)
        if known then
            redis.call('ZREM', KEYS[k + 1], id)
            redis.call('ZREM', KEYS[k + 2], id)
            if redis.call('EXISTS', KEYS[k + 1]) == 0 then redis.call('SREM', KEYS[4], task) end
        end
    end
end
return deleted
"""


class RedisRunLog(RunLog):
    """Run records under ``<prefix>:run_log:*`` in the Redis database of ``client`` (see
    the module docstring). ``logger`` receives the damage reports."""

    def __init__(
        self, client: redis.Redis, prefix: str, *, logger: logging.Logger | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        base = f"{prefix}:run_log"
        self.records_key = f"{base}:records"
        self.by_time_key = f"{base}:by_time"
        self.final_key = f"{base}:final"
        self.tasks_key = f"{base}:tasks"
        self._task_prefix = f"{base}:task:"
        self._task_final_prefix = f"{base}:task_final:"
        self._keys = [self.records_key, self.by_time_key, self.final_key, self.tasks_key]
        self.logger = logger or logging.getLogger(__name__)
        self._damage = DamageLog(self.logger, f"Redis run log {base!r}")
        self._write = client.register_script(_WRITE)
        self._delete = client.register_script(_DELETE)

    def __repr__(self) -> str:
        return f"<RedisRunLog prefix={self.prefix!r}>"

    def _task_keys(self, task_id: str) -> list[str]:
        return [self._task_prefix + task_id, self._task_final_prefix + task_id]

    # -- writes -----------------------------------------------------------------------

    def write(self, records: Iterable[RunRecord]) -> None:
        """See :meth:`RunLog.write`: one atomic script per 500 records."""
        batch = apply_rule(records)
        for start in range(0, len(batch), _BATCH):
            keys = list(self._keys)
            args: list[str | bytes] = []
            for record in batch[start : start + _BATCH]:
                keys.extend(self._task_keys(record.task_id))
                args.extend(
                    [
                        record.run_id,
                        record.task_id,
                        encode_record(record),
                        repr(record.scheduled_run_time.timestamp()),
                        "1" if record.finished else "0",
                    ]
                )
            self._write(keys=keys, args=args)

    # -- reads ------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord | None:
        """See :meth:`RunLog.get`."""
        value = _reply(self.client.hget(self.records_key, run_id))
        return self._load(run_id, value)

    def _load(self, run_id: str, value: bytes | str | None) -> RunRecord | None:
        """The record stored under ``run_id``, or ``None`` (logged once if damaged)."""
        if value is None:
            return None
        try:
            record = decode_record(value)
            if record.run_id != run_id:
                raise DamagedRecord(f"it holds run {record.run_id!r}")
        except DamagedRecord as exc:
            self._damage.report((run_id, value), repr(run_id), str(exc))
            return None
        return record

    def query(
        self,
        task_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """See :meth:`RunLog.query`: pages of the task's (or everyone's) sorted set, newest
        first, and the records of each page in one ``HMGET``."""
        if limit <= 0:
            return []
        key = self._task_prefix + task_id if task_id is not None else self.by_time_key
        low: str = "-inf" if since is None else repr(since.timestamp())
        page = _PAGE if outcome is not None else min(limit + 10, _PAGE)
        found: list[RunRecord] = []
        seen: set[str] = set()
        offset = 0
        while len(found) < limit:
            ids = [
                _text(item)
                for item in cast(
                    "list[bytes | str]",
                    self.client.zrevrangebyscore(key, "+inf", low, start=offset, num=page),
                )
            ]
            if not ids:
                break
            offset += len(ids)
            values = _reply(self.client.hmget(self.records_key, ids))
            for run_id, value in zip(ids, values, strict=True):
                if value is None:
                    self._damage.report(
                        (key, run_id), repr(run_id), f"listed in {key!r} but not stored"
                    )
                    continue
                record = self._load(run_id, value)
                if (
                    record is not None
                    and run_id not in seen  # (a page boundary moved by a concurrent write)
                    and (task_id is None or record.task_id == task_id)
                    and (outcome is None or record.outcome == outcome)
                    and (since is None or record.scheduled_run_time >= since)
                ):
                    seen.add(run_id)
                    found.append(record)
            if len(ids) < page:
                break
        return found[:limit]

    # -- retention --------------------------------------------------------------------

    def prune(self, now: datetime, max_age: float | None, max_per_task: int | None) -> int:
        """See :meth:`RunLog.prune`: ranges of the ``final`` sets by score, deleted 500
        at a time by a script that checks each run is still final."""
        deleted = 0
        high = _age_bound(now, max_age)
        if high is not None:
            while True:
                ids = [
                    _text(item)
                    for item in cast(
                        "list[bytes | str]",
                        self.client.zrangebyscore(
                            self.final_key, "-inf", high, start=0, num=_BATCH
                        ),
                    )
                ]
                if not ids:
                    break
                deleted += self._delete_runs(ids, self._task_ids_of(ids))
                if len(ids) < _BATCH:
                    break
        if max_per_task is not None:
            keep = max(max_per_task, 0)
            for task_ids in self._task_id_batches():
                pipe = self.client.pipeline(transaction=False)
                for task_id in task_ids:
                    pipe.zcard(self._task_final_prefix + task_id)
                counts = cast("list[int]", pipe.execute())
                for task_id, count in zip(task_ids, counts, strict=True):
                    if count > keep:
                        deleted += self._prune_task(task_id, keep)
        return deleted

    def _prune_task(self, task_id: str, keep: int) -> int:
        """Delete all but the ``keep`` newest final records of one task, oldest first."""
        key = self._task_final_prefix + task_id
        deleted = 0
        while True:
            surplus: int = _reply(self.client.zcard(key)) - keep
            if surplus <= 0:
                return deleted
            ids = [
                _text(item)
                for item in cast(
                    "list[bytes | str]", self.client.zrange(key, 0, min(surplus, _BATCH) - 1)
                )
            ]
            if not ids:
                return deleted
            deleted += self._delete_runs(ids, [task_id] * len(ids))
            if surplus <= _BATCH:
                return deleted

    def _task_ids_of(self, run_ids: Sequence[str]) -> list[str | None]:
        """The task id of each run: from its record, else (a damaged or missing record)
        from the run id when it has make_run_id's form, else ``None``."""
        values = _reply(self.client.hmget(self.records_key, list(run_ids)))
        task_ids: list[str | None] = []
        for run_id, value in zip(run_ids, values, strict=True):
            task_id: object = None
            if value is not None:
                try:
                    document = json.loads(value)
                except (ValueError, UnicodeDecodeError):
                    document = None
                if isinstance(document, dict):
                    task_id = document.get("task_id")
            if not isinstance(task_id, str):
                task_id = task_of_run_id(run_id)
            task_ids.append(task_id)
        return task_ids

    def _delete_runs(self, run_ids: Sequence[str], task_ids: Sequence[str | None]) -> int:
        keys = list(self._keys)
        args: list[str] = []
        for run_id, task_id in zip(run_ids, task_ids, strict=True):
            # An unknown task still needs two key slots; the script leaves them alone.
            keys.extend(self._task_keys(task_id or ""))
            args.extend([run_id, "0" if task_id is None else "1", task_id or ""])
        return cast("int", self._delete(keys=keys, args=args))

    def _task_id_batches(self) -> Iterable[list[str]]:
        """The task ids that have records, in batches (``SSCAN``: no long call)."""
        cursor: int = 0
        while True:
            cursor, items = _reply(self.client.sscan(self.tasks_key, cursor, count=_BATCH))
            if items:
                yield [_text(item) for item in items]
            if cursor == 0:
                return


def _age_bound(now: datetime, max_age: float | None) -> str | None:
    """The score range end (exclusive) of runs older than ``max_age``, or ``None``."""
    if max_age is None or math.isnan(max_age):
        return None
    bound = now.timestamp() - max_age
    if math.isinf(bound):
        return "+inf" if bound > 0 else None
    return f"({bound!r}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def _reply(value: object) -> Any:
    """A reply of the synchronous client, as it comes. redis-py 5 types many commands as
    ``Awaitable[T] | T`` (one signature for both clients), redis-py 8 as ``T``: the callers
    say what they read, and mypy is clean on both."""
    return value
