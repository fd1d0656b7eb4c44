"""Tasks in Redis: a hash of serialized tasks and a sorted set of next run times.

Keys, for ``prefix="tickwork"``:

* ``tickwork:tasks``: hash, task id -> serialized task;
* ``tickwork:run_times``: sorted set, task id scored by its next run time (epoch
  seconds); paused tasks are not in it;
* ``tickwork:meta``: hash with ``schema_version``.

Every write that touches both keys runs as one Lua script, which Redis executes
atomically: no reader ever sees a task without its run time or the other way round, and
"add unless the id exists" cannot race with another writer. On Redis Cluster, put a hash
tag in the prefix (``prefix="{tickwork}"``) so all keys live in one slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import redis
import redis.exceptions

from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    StoreUnavailableError,
    TaskLookupError,
)
from tickwork.serializers import BaseSerializer, resolve_serializer
from tickwork.serializers._broken import BrokenTasks
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["SCHEMA_VERSION", "RedisStore"]

#: The key layout this tickwork writes; recorded in ``<prefix>:meta``.
SCHEMA_VERSION = 1

# KEYS: tasks hash, run-times zset. ARGV: id, blob, score ("" = paused), repeated.
# Returns the first id that already exists (nothing written), or false.
_ADD = """
for i = 1, #ARGV, 3 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return ARGV[i] end
end
for i = 1, #ARGV, 3 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    if ARGV[i + 2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i]) end
end
return false
"""

# KEYS as above. ARGV[1] = number of updates n; then n triples (id, blob, score) of tasks
# to update if they still exist; then ids to delete. Returns how many updates matched.
_WRITE = """
local n = tonumber(ARGV[1])
local matched = 0
for i = 2, 3 * n + 1, 3 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
        matched = matched + 1
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
        if ARGV[i + 2] == '' then
            redis.call('ZREM', KEYS[2], ARGV[i])
        else
            redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
        end
    end
end
for i = 3 * n + 2, #ARGV do
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
end
return matched
"""

# KEYS as above. ARGV: max score, count. Returns id, blob, id, blob, ... earliest first.
_DUE = """
local ids = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
    local blob = redis.call('HGET', KEYS[1], id)
    if blob then
        out[#out + 1] = id
        out[#out + 1] = blob
    end
end
return out
"""


class RedisStore(BaseStore):
    """Tasks in a Redis hash plus a sorted set of run times (see the module docstring).

    Give ``url`` or a ``client`` you manage (it must not use ``decode_responses``: tasks
    are bytes). ``prefix`` namespaces the keys, so several stores can share a database.
    ``serializer`` is a :class:`~tickwork.serializers.base.BaseSerializer`, ``"json"``
    (the default) or ``"pickle"``. Everything else: see
    :class:`~tickwork.stores.base.BaseStore`.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        client: redis.Redis | None = None,
        prefix: str = "tickwork",
        serializer: BaseSerializer | str | None = None,
    ) -> None:
        super().__init__()
        self.serializer = resolve_serializer(serializer)
        self._owns_client = client is None
        self.client: redis.Redis = client if client is not None else redis.Redis.from_url(url)
        if self.client.get_connection_kwargs().get("decode_responses"):
            raise ConfigurationError(
                "the RedisStore needs a client without decode_responses=True: tasks are bytes"
            )
        self.prefix = prefix
        self.tasks_key = f"{prefix}:tasks"
        self.run_times_key = f"{prefix}:run_times"
        self.meta_key = f"{prefix}:meta"
        self._keys = [self.tasks_key, self.run_times_key]
        self._add = self.client.register_script(_ADD)
        self._write = self.client.register_script(_WRITE)
        self._due = self.client.register_script(_DUE)
        self._broken = BrokenTasks(self.logger)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, alias: str) -> None:
        """Check the server is reachable and record (or check) the schema version."""
        super().start(alias)
        with self._unavailable("start"):
            self.client.hsetnx(self.meta_key, "schema_version", str(SCHEMA_VERSION))
            found = self.client.hget(self.meta_key, "schema_version")
        version = int(found or SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"Redis keys {self.prefix!r}:* follow tickwork schema version {version}, newer "
                f"than this tickwork's ({SCHEMA_VERSION}); upgrade tickwork"
            )

    def shutdown(self) -> None:
        """Close the connections of a client this store created."""
        self._broken.clear()
        if self._owns_client:
            self.client.close()

    @contextlib.contextmanager
    def _unavailable(self, action: str) -> Iterator[None]:
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailableError(
                f"Redis store {self.alias!r} could not {action}: {exc}"
            ) from exc

    # -- writes ---------------------------------------------------------------------------


    def add_task(self, task: Task) -> None:
        """Store a new task (see :meth:`BaseStore.add_task`)."""
        self.add_tasks([task])

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        """Store several new tasks atomically: all, or none on a duplicate id."""
        tasks = list(tasks)
        args: list[Any] = []
        seen: set[str] = set()
        for task in tasks:
            args.extend(self._triple(task))
            if task.id in seen:
                raise ConflictIdError(task.id)
            seen.add(task.id)
        if not tasks:
            return
        with self._unavailable("add tasks"):
            taken = self._add(keys=self._keys, args=args)
        if taken:
            raise ConflictIdError(taken.decode("utf-8"))
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)

    def update_task(self, task: Task) -> None:
        """Replace the stored task (see :meth:`BaseStore.update_task`)."""
        args: list[Any] = [1, *self._triple(task)]
        with self._unavailable("update a task"):
            matched = self._write(keys=self._keys, args=args)
        if not matched:
            raise TaskLookupError(task.id, self.alias)
        task.store_alias = self.alias
        self._broken.forget(task.id)

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        with self._unavailable("remove a task"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(self.tasks_key, task_id)
            pipe.zrem(self.run_times_key, task_id)
            deleted, _ = pipe.execute()
        self._broken.forget(task_id)
        if not deleted:
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        """Delete both keys of this store (the schema record stays)."""
        with self._unavailable("remove all tasks"):
            self.client.delete(self.tasks_key, self.run_times_key)
        self._broken.clear()

    def release_tasks(self, owner: str, updated: Iterable[Task], removed: Iterable[str]) -> None:
        """Write a pass's updates and removals in one atomic script; tasks deleted
        meanwhile stay deleted."""
        tasks = list(updated)
        removed = list(removed)
        args: list[Any] = [len(tasks)]
        for task in tasks:
            args.extend(self._triple(task))
        args.extend(removed)
        if not tasks and not removed:
            return
        with self._unavailable("store processed tasks"):
            self._write(keys=self._keys, args=args)
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)
        for task_id in removed:
            self._broken.forget(task_id)

    def _triple(self, task: Task) -> tuple[str, bytes, str]:
        blob = self.serializer.serialize(task)
        # repr() of a float is the shortest string that reads back to the same double.
        score = repr(task.next_run_time.timestamp()) if task.next_run_time is not None else ""
        return task.id, blob, score

    # -- reads ----------------------------------------------------------------------------

    def _load(self, task_id: bytes | str, blob: bytes) -> Task | None:
        text_id = task_id.decode("utf-8") if isinstance(task_id, bytes) else task_id
        task = self._broken.load(self.serializer, text_id, blob)
        if task is not None:
            task.store_alias = self.alias
        return task

    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None`` (also when it cannot be loaded)."""
        with self._unavailable("look up a task"):
            blob = cast("bytes | None", self.client.hget(self.tasks_key, task_id))
        return self._load(task_id, blob) if blob is not None else None

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return due tasks, earliest first, read in one atomic script."""
        while True:
            # Tasks that fail to load are skipped, so fetch as many more as are known to
            # fail; when new failures show up, ask again with the larger allowance.
            known = len(self._broken)
            count = -1 if limit is None else limit + known
            with self._unavailable("query due tasks"):
                flat = self._due(keys=self._keys, args=[repr(now.timestamp()), count])
            tasks: list[Task] = []
            for index in range(0, len(flat), 2):
                task = self._load(flat[index], flat[index + 1])
                if task is not None:
                    tasks.append(task)
                    if limit is not None and len(tasks) >= limit:
                        break
            if limit is None or len(tasks) >= limit or len(self._broken) == known:
                return tasks

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest next run time of the tasks that can be loaded."""
        broken = set(self._broken.ids())
        with self._unavailable("query the next run time"):
            head = cast(
                "list[tuple[bytes, float]]",
                self.client.zrange(self.run_times_key, 0, len(broken), withscores=True),
            )
        for task_id, score in head:
            if task_id.decode("utf-8") not in broken:
                return datetime.fromtimestamp(score, UTC)
        return None

    def get_all_tasks(self) -> list[Task]:
        """Return every loadable task, by next run time, paused last."""
        with self._unavailable("list tasks"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(self.tasks_key)
            pipe.zrange(self.run_times_key, 0, -1, withscores=True)
            blobs, scored = pipe.execute()
        order = {task_id: index for index, (task_id, _) in enumerate(scored)}
        paused = sorted(task_id for task_id in blobs if task_id not in order)
        ids = [task_id for task_id, _ in scored if task_id in blobs] + paused
        tasks = [self._load(task_id, blobs[task_id]) for task_id in ids]
        return [task for task in tasks if task is not None]

    def __repr__(self) -> str:
        return f"<RedisStore alias={self.alias!r} prefix={self.prefix!r}>"
