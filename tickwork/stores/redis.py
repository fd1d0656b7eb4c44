"""Tasks in Redis: a hash of serialized tasks and a sorted set of next run times.

Keys, for ``prefix="tickwork"``:

* ``tickwork:tasks``: hash, task id -> serialized task;
* ``tickwork:run_times``: sorted set, task id scored by its next run time (epoch
  seconds); paused tasks are not in it;
* ``tickwork:meta``: hash with ``schema_version``;
* claims and runs in progress, for schedulers sharing the store: see
  :mod:`tickwork.stores._redis_scripts`.

Every write that touches several keys runs as one Lua script, which Redis executes
atomically: no reader ever sees a task without its run time or the other way round, and
"add unless the id exists" cannot race with another writer. On Redis Cluster, put a hash
tag in the prefix (``prefix="{tickwork}"``) so all keys live in one slot.

Several schedulers, on any number of hosts, may share one prefix: due tasks are
claimed, and every run is recorded before it starts, by atomic scripts (see
:mod:`tickwork.stores.base` and ``docs/many-workers.md``). Schema version 2 added those
keys, version 3 the attempts and cancel requests of runs (pending retries are run records
without an owner), version 4 the leader's term and the set of leader-only tasks (see
:mod:`tickwork.stores._redis_leader`); an older prefix is upgraded by :meth:`RedisStore.start` (new keys
only: a record without an attempt is a first attempt).

Bad data under the prefix (a run time without its task, a garbled claim or run record)
is skipped and repaired by the scripts, and logged once; see
:mod:`tickwork.stores._redis_scripts`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    MissingDependencyError,
    SerializationError,
    StoreUnavailableError,
    TaskLookupError,
)
from tickwork.runs.base import RunLog
from tickwork.serializers import BaseSerializer, resolve_serializer
from tickwork.serializers._broken import BrokenTasks
from tickwork.stores import _redis_scripts as scripts
from tickwork.stores._claimed import ClaimedRecords, merge_changed
from tickwork.stores._redis_leader import RedisLeader
from tickwork.stores._redis_tags import REMOVE, TAG_HELPERS, TAGGED, WRITE_TAGGED
from tickwork.stores.base import (
    BaseStore,
    InProgressRun,
    LeaderTerm,
    NextRunTime,
    PendingRetry,
    RunKey,
)
from tickwork.tasks import Task

# An optional dependency: without it this module still imports (a store configuration
# names it by alias, and the registry's import error would hide ours), and making a
# RedisStore says which extra to install.
_missing_client: ModuleNotFoundError | None = None
try:
    import redis
    import redis.exceptions
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] != "redis":
        raise
    _missing_client = missing

__all__ = ["SCHEMA_VERSION", "RedisStore"]

#: The key layout this tickwork writes; recorded in ``<prefix>:meta``.
SCHEMA_VERSION = 5
#: Seconds a call may wait for the server (``io_timeout``).
DEFAULT_IO_TIMEOUT = 5.0
#: Rounds of read and compare-and-set write an action on a tag makes for records that
#: other writers change in between; what still changes after that is logged and left.
_TAG_ROUNDS = 5
#: Rounds of writing back a task that keeps changing while claimed (see _merge_changed).
_MERGE_ROUNDS = 5
# Repairs already logged, (kind, subject, value); forgotten past this many.
_REPAIRS_REMEMBERED = 10_000

# KEYS: tasks hash, run-times zset, leader-only set, tag index, task_tags (see
# tickwork/stores/_redis_tags.py). ARGV: id, blob, score ("" = paused), leader-only ("1"
# or ""), tags joined by NUL, repeated. Returns the first id that already exists
# (nothing written), or false.
_ADD = (
    TAG_HELPERS
    + """
for i = 1, #ARGV, 5 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return ARGV[i] end
end
for i = 1, #ARGV, 5 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    tag(ARGV[i], ARGV[i + 4])
    if ARGV[i + 2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i]) end
    if ARGV[i + 3] == '1' then
        redis.call('SADD', KEYS[3], ARGV[i])
    else
        redis.call('SREM', KEYS[3], ARGV[i])
    end
end
return false
"""
)

# KEYS as above. ARGV[1] = number of updates n; then n quintuples (id, blob, score,
# leader-only, tags) of tasks to update if they still exist; then ids to delete. Returns
# how many updates matched.
_WRITE = (
    TAG_HELPERS
    + """
local n = tonumber(ARGV[1])
local matched = 0
for i = 2, 5 * n + 1, 5 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
        matched = matched + 1
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
        tag(ARGV[i], ARGV[i + 4])
        if ARGV[i + 2] == '' then
            redis.call('ZREM', KEYS[2], ARGV[i])
        else
            redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
        end
        if ARGV[i + 3] == '1' then
            redis.call('SADD', KEYS[3], ARGV[i])
        else
            redis.call('SREM', KEYS[3], ARGV[i])
        end
    end
end
for i = 5 * n + 2, #ARGV do
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('SREM', KEYS[3], ARGV[i])
    untag(ARGV[i])
end
return matched
"""
)


class RedisStore(BaseStore):
    """Tasks in a Redis hash plus a sorted set of run times (see the module docstring).

    Give ``url`` or a ``client`` you manage (it must not use ``decode_responses``: tasks
    are bytes). ``prefix`` namespaces the keys, so several stores can share a database.
    ``serializer`` is a :class:`~tickwork.serializers.base.BaseSerializer`, ``"json"``
    (the default) or ``"pickle"``. ``lease_time`` (seconds, default 10) bounds how long
    the runs of a scheduler that died stay unattended.

    ``io_timeout`` (seconds, default 5) is the socket and connect timeout of the client
    the store builds from ``url``; a call that exceeds it raises
    :class:`~tickwork.exceptions.StoreUnavailableError` naming the store, the operation
    and the bound. A ``client`` you pass keeps its own timeouts (give it
    ``socket_timeout`` and ``socket_connect_timeout``). Everything else: see
    :class:`~tickwork.stores.base.BaseStore`.
    """

    supports_leases = True
    supports_election = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        client: redis.Redis | None = None,
        prefix: str = "tickwork",
        serializer: BaseSerializer | str | None = None,
        lease_time: float = 10.0,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
    ) -> None:
        if _missing_client is not None:
            raise MissingDependencyError(
                "redis", "RedisStore", "pip install 'tickwork[redis]'"
            ) from _missing_client
        super().__init__()
        if not lease_time > 0:
            raise ConfigurationError(f"lease_time must be positive, got {lease_time!r}")
        self.lease_time = float(lease_time)
        self.io_timeout = _check_io_timeout(io_timeout)
        self.serializer = resolve_serializer(serializer)
        self._owns_client = client is None
        self.client: redis.Redis = client if client is not None else self._client_for(url)
        if self.client.get_connection_kwargs().get("decode_responses"):
            raise ConfigurationError(
                "the RedisStore needs a client without decode_responses=True: tasks are bytes"
            )
        self.prefix = prefix
        self.tasks_key = f"{prefix}:tasks"
        self.run_times_key = f"{prefix}:run_times"
        self.meta_key = f"{prefix}:meta"
        self.claims_key = f"{prefix}:claims"
        self._keys = [self.tasks_key, self.run_times_key]
        # Leadership (schema 4): the term, its generation counter, the leader-only ids.
        self._leader = RedisLeader(self.client, prefix)
        # The tag index (schema 5): see tickwork/stores/_redis_tags.py.
        self.tag_index_key = f"{prefix}:tag_index"
        self.task_tags_key = f"{prefix}:task_tags"
        self._written_keys = [
            *self._keys,
            self._leader.tasks_key,
            self.tag_index_key,
            self.task_tags_key,
        ]
        self._keys_for_tags = [*self._written_keys, self.claims_key]
        # runs, run_owners, run_leases, run_counts, run_attempts, run_cancels (the order
        # of KEYS in the scripts of runs)
        self._run_keys = [
            f"{prefix}:{name}"
            for name in (
                "runs",
                "run_owners",
                "run_leases",
                "run_counts",
                "run_attempts",
                "run_cancels",
            )
        ]
        self._add = self.client.register_script(_ADD)
        self._write = self.client.register_script(_WRITE)
        self._due = self.client.register_script(scripts.DUE)
        self._acquire = self.client.register_script(scripts.ACQUIRE)
        self._release = self.client.register_script(scripts.RELEASE)
        self._renew = self.client.register_script(scripts.RENEW)
        self._finish = self.client.register_script(scripts.FINISH)
        self._take_over = self.client.register_script(scripts.TAKE_OVER)
        self._untake = self.client.register_script(scripts.UNTAKE)
        self._retry = self.client.register_script(scripts.RETRY)
        self._cancel = self.client.register_script(scripts.CANCEL)
        self._cancel_requests = self.client.register_script(scripts.CANCEL_REQUESTS)
        self._next_retry = self.client.register_script(scripts.NEXT_RETRY)
        self._next_time = self.client.register_script(scripts.NEXT_TIME)
        self._rescore = self.client.register_script(scripts.RESCORE)
        self._remove = self.client.register_script(REMOVE)
        self._tagged = self.client.register_script(TAGGED)
        self._write_tagged = self.client.register_script(WRITE_TAGGED)
        self._broken = BrokenTasks(self.logger)
        #: The bytes of each task this object claimed, until its write-back (see _claimed).
        self._claimed = ClaimedRecords()
        self._repairs_logged: set[tuple[str, str, str]] = set()

    def _client_for(self, url: str) -> redis.Redis:
        """The client for ``url``, its waits bounded by ``io_timeout`` (options in the
        URL's query string win)."""
        return redis.Redis.from_url(
            url,
            socket_timeout=self.io_timeout,
            socket_connect_timeout=self.io_timeout,
            # No retries inside the client: each would wait up to the bound again, and a
            # script whose reply timed out may have run (RELEASE run twice reports its
            # own runs as already recorded). The scheduler retries the store with backoff.
            retry=Retry(NoBackoff(), 0),
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, alias: str) -> None:
        """Check the server is reachable and record (or check) the schema version."""
        super().start(alias)
        with self._unavailable("start"):
            self.client.hsetnx(self.meta_key, "schema_version", str(SCHEMA_VERSION))
            found = cast("bytes | None", self.client.hget(self.meta_key, "schema_version"))
        version = self._schema_version(found)
        if version < SCHEMA_VERSION:
            # 1 -> 2: claims and run records are new keys; the tasks are unchanged.
            # 2 -> 3: attempts and cancel requests are new keys (no attempt: the first).
            # 3 -> 4: the leader's term and the leader-only set are new keys (none is).
            # 4 -> 5: the tag index keys are new, and empty: no older record has tags.
            with self._unavailable("start"):
                self.client.hset(self.meta_key, "schema_version", str(SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"Redis keys {self.prefix!r}:* follow tickwork schema version {version}, newer "
                f"than this tickwork's ({SCHEMA_VERSION}); upgrade tickwork"
            )

    def _schema_version(self, found: bytes | None) -> int:
        """The version recorded under the prefix (this tickwork's when none is)."""
        if found is None:
            return SCHEMA_VERSION
        try:
            return int(found)
        except ValueError:
            raise ConfigurationError(
                f"Redis key {self.meta_key!r} holds schema_version {_text(found)!r}, which "
                "is not a version number; fix or delete it"
            ) from None

    def shutdown(self) -> None:
        """Close the connections of a client this store created."""
        self._broken.clear()
        self._claimed.clear()
        if self._owns_client:
            self.client.close()

    @contextlib.contextmanager
    def _unavailable(self, action: str) -> Iterator[None]:
        """Turn the client's connection failures and timeouts into
        :class:`StoreUnavailableError` naming the store, ``action`` and the bound."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if self._owns_client and isinstance(exc, redis.exceptions.TimeoutError):
                raise StoreUnavailableError.timed_out(
                    "Redis", self.alias, action, self.io_timeout, exc
                ) from exc
            raise StoreUnavailableError(
                f"Redis store {self.alias!r} could not {action}: {exc}"
            ) from exc

    # -- repairs --------------------------------------------------------------------------

    def _noted(self, reply: Sequence[Any]) -> Any:
        """The answer of a script that returns ``{answer, notes}``, after logging the
        repairs its notes describe (see :mod:`._redis_scripts`)."""
        answer, notes = reply
        for index in range(0, len(notes), 3):
            kind, subject, value = (_text(item) for item in notes[index : index + 3])
            self._log_repair(kind, subject, value)
        return answer

    def _log_repair(self, kind: str, subject: str, value: str) -> None:
        """Log one repair, once: the same bad value met again (a count is only read until
        a script resets it) is not logged again."""
        key = (kind, subject, value)
        if key in self._repairs_logged:
            return
        if len(self._repairs_logged) >= _REPAIRS_REMEMBERED:
            self._repairs_logged.clear()
        self._repairs_logged.add(key)
        message = _REPAIR_MESSAGES.get(kind, "repaired {subject!r} ({value})")
        self.logger.warning(
            "Redis store %r: %s", self.alias, message.format(subject=subject, value=value)
        )

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
            args.extend(self._quad(task))
            if task.id in seen:
                raise ConflictIdError(task.id)
            seen.add(task.id)
        if not tasks:
            return
        with self._unavailable("add tasks"):
            taken = self._add(keys=self._written_keys, args=args)
        if taken:
            raise ConflictIdError(taken.decode("utf-8"))
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)

    def update_task(self, task: Task) -> None:
        """Replace the stored task (see :meth:`BaseStore.update_task`)."""
        args: list[Any] = [1, *self._quad(task)]
        with self._unavailable("update a task"):
            matched = self._write(keys=self._written_keys, args=args)
        if not matched:
            raise TaskLookupError(task.id, self.alias)
        task.store_alias = self.alias
        self._broken.forget(task.id)

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        with self._unavailable("remove a task"):
            keys = [*self._written_keys, self.claims_key]
            deleted = self._remove(keys=keys, args=[task_id])
        self._broken.forget(task_id)
        if not deleted:
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        """Delete the tasks and their claims (the schema record and the records of runs
        in progress stay)."""
        with self._unavailable("remove all tasks"):
            self.client.delete(
                self.tasks_key,
                self.run_times_key,
                self.claims_key,
                self._leader.tasks_key,
                self.tag_index_key,
                self.task_tags_key,
            )
        self._broken.clear()

    def release_tasks(
        self,
        owner: str,
        updated: Iterable[Task],
        removed: Iterable[str],
        runs: Iterable[tuple[Task, datetime]] = (),
        runs_expire: datetime | None = None,
    ) -> Collection[str]:
        """Write a pass's updates and removals and record its runs, in one atomic script
        (see :meth:`BaseStore.release_tasks`); tasks deleted meanwhile stay deleted; a task
        changed meanwhile keeps the change (see :mod:`._claimed`)."""
        tasks = list(updated)
        removed = list(removed)
        runs = list(runs)
        if not tasks and not removed and not runs:
            return ()
        expires = runs_expire or datetime.now(UTC) + timedelta(seconds=self.lease_time)
        try:
            skipped, changed = self._release_once(owner, tasks, removed, runs, expires)
            if changed:
                skipped |= self._merge_changed(owner, changed, tasks)
        finally:
            self._claimed.forget([task.id for task in tasks] + removed)
        for task in tasks:
            task.store_alias = self.alias
            self._broken.forget(task.id)
        for task_id in removed:
            self._broken.forget(task_id)
        return skipped

    def _release_once(
        self,
        owner: str,
        tasks: list[Task],
        removed: list[str],
        runs: list[tuple[Task, datetime]],
        expires: datetime,
    ) -> tuple[set[str], list[str]]:
        """One run of the release script: the ids whose runs must not start, and the ids
        changed since their claim (left claimed and unwritten)."""
        args: list[Any] = [owner, len(tasks)]
        for task in tasks:
            args.extend(self._triple(task))
            args.append("\0".join(task.tags))
            args.append(self._claimed.blob(task.id) or b"")
        args.append(len(removed))
        for task_id in removed:
            args.extend([task_id, self._claimed.blob(task_id) or b""])
        args.extend([repr(expires.timestamp()), len(runs)])
        updated_ids = {task.id for task in tasks}
        for task, when in runs:
            blob = b"" if task.id in updated_ids else self.serializer.serialize(task)
            args.extend([task.id, _run_key(task.id, when), blob])
        keys = [
            *self._keys,
            self.claims_key,
            *self._run_keys,
            self.tag_index_key,
            self.task_tags_key,
        ]
        with self._unavailable("store processed tasks"):
            reply = self._release(keys=keys, args=args)
        skipped = self._noted(reply[:2])
        return {_text(task_id) for task_id in skipped}, [_text(i) for i in reply[2]]

    def _merge_changed(self, owner: str, changed: list[str], tasks: list[Task]) -> set[str]:
        """Store, for each id in ``changed`` (changed by someone else while ``owner`` held
        it), what :func:`._claimed.merge_changed` says, through the release script again
        (so a change landing meanwhile is seen again: a few rounds, then left claimed until
        the claim expires, with a warning). Returns ids whose runs must not start."""
        advanced = {task.id: task for task in tasks}
        claimed_next = {i: self._claimed.next_run_time(i) for i in changed}
        expires = datetime.now(UTC)
        skipped: set[str] = set()
        for _ in range(_MERGE_ROUNDS):
            with self._unavailable("read tasks changed while claimed"):
                blobs = cast(list[bytes | None], self.client.hmget(self.tasks_key, changed))
            keep: list[Task] = []
            drop: list[str] = []
            for task_id, blob in zip(changed, blobs, strict=True):
                if blob is None:  # deleted meanwhile: the script drops the claim
                    drop.append(task_id)
                    continue
                current = self._load(task_id, blob)
                if current is None:  # reported where it is read; its claim just ends
                    with self._unavailable("end a claim"):
                        self.client.hdel(self.claims_key, task_id)
                    continue
                self._claimed.remember(task_id, blob, claimed_next[task_id])
                merged = merge_changed(current, claimed_next[task_id], advanced.get(task_id))
                if merged is None:
                    drop.append(task_id)
                else:
                    keep.append(merged)
                    self.logger.info(
                        "task %r was changed while scheduler %r held it for its runs; the "
                        "change is kept (its next run time moved past the runs made, unless "
                        "the change set it)",
                        task_id,
                        owner,
                        extra={"task_id": task_id},
                    )
            more, changed = self._release_once(owner, keep, drop, [], expires)
            skipped |= more
            if not changed:
                return skipped
        self.logger.warning(
            "tasks %s kept changing while scheduler %r wrote them back; left claimed until "
            "the claim expires",
            changed,
            owner,
        )
        return skipped

    def _triple(self, task: Task) -> tuple[str, bytes, str]:
        blob = self.serializer.serialize(task)
        # repr() of a float is the shortest string that reads back to the same double.
        score = repr(task.next_run_time.timestamp()) if task.next_run_time is not None else ""
        return task.id, blob, score

    def _quad(self, task: Task) -> tuple[str, bytes, str, str, str]:
        """:meth:`_triple`, whether the task is leader-only and its tags joined by NUL
        (for adds and updates: the leader-only set and the tag index follow them; a
        write-back of a claimed task keeps both)."""
        return *self._triple(task), "1" if task.leader_only else "", "\0".join(task.tags)

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
                reply = self._due(
                    keys=[*self._keys, self.claims_key], args=[repr(now.timestamp()), count]
                )
            flat = self._noted(reply)
            tasks: list[Task] = []
            for index in range(0, len(flat), 2):
                task = self._load(flat[index], flat[index + 1])
                if task is not None:
                    tasks.append(task)
                    if limit is not None and len(tasks) >= limit:
                        break
            if limit is None or len(tasks) >= limit or len(self._broken) == known:
                return tasks

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """Claim up to ``limit`` due tasks whose claim is free, expired or ``owner``'s, in
        one atomic script."""
        expires = repr(now.timestamp() + lease.total_seconds())
        term = self._leader.token(owner)
        keys = [*self._keys, self.claims_key, self._leader.tasks_key, self._leader.term_key]
        while True:
            known = self._broken.ids()  # not claimed: they cannot run here
            args: list[Any] = [repr(now.timestamp()), limit, owner, expires, term, *known]
            with self._unavailable("claim due tasks"):
                reply = self._acquire(keys=keys, args=args)
            flat = self._noted(reply)
            tasks = []
            for index in range(0, len(flat), 2):
                task = self._load(flat[index], flat[index + 1])
                if task is not None:
                    self._claimed.remember(task.id, flat[index + 1], task.next_run_time)
                    tasks.append(task)
            if len(tasks) >= limit or len(self._broken) == len(known):
                return tasks

    # -- leadership -------------------------------------------------------------------------

    def elect(self, owner: str, lease: float) -> int | None:
        """Take or renew ``owner``'s term, by the Redis server's clock (see
        :meth:`BaseStore.elect` and :mod:`tickwork.stores._redis_leader`)."""
        with self._unavailable("elect a leader"):
            return self._leader.elect(owner, lease)

    def resign(self, owner: str) -> None:
        """End ``owner``'s term now (see :meth:`BaseStore.resign`)."""
        with self._unavailable("resign the leadership"):
            self._leader.resign(owner)

    def get_leader(self) -> LeaderTerm | None:
        """The running term, read from its key (see :meth:`BaseStore.get_leader`)."""
        with self._unavailable("read the leader"):
            term = self._leader.current(self.client)
        return None if term is None else LeaderTerm(*term)

    def count_runs(self, task_ids: Collection[str]) -> dict[str, int]:
        """Runs in progress per task, over every scheduler sharing the prefix."""
        ids = list(task_ids)
        if not ids:
            return {}
        with self._unavailable("count runs in progress"):
            counts = cast("list[bytes | None]", self.client.hmget(self._run_keys[3], ids))
        found: dict[str, int] = {}
        for task_id, count in zip(ids, counts, strict=True):
            if count is None:
                continue
            try:
                found[task_id] = int(count)
            except ValueError:
                # Read as none: the next script that changes the count resets it.
                self._log_repair("count", task_id, _text(count))
        return {task_id: count for task_id, count in found.items() if count}

    def renew_runs(self, owner: str, runs: Collection[RunKey], expires: datetime) -> int:
        """Extend ``owner``'s run records (see :meth:`BaseStore.renew_runs`)."""
        if not runs:
            return 0
        keys = [_run_key(task_id, when) for task_id, when in runs]
        with self._unavailable("renew runs in progress"):
            renewed = self._renew(
                keys=self._run_keys[1:3], args=[owner, repr(expires.timestamp()), *keys]
            )
        return int(renewed)

    def finish_runs(self, owner: str, runs: Collection[RunKey]) -> None:
        """Delete ``owner``'s records of ended runs."""
        if not runs:
            return
        args: list[Any] = [owner]
        for task_id, when in runs:
            args.extend([_run_key(task_id, when), task_id])
        with self._unavailable("record finished runs"):
            reply = self._finish(keys=self._run_keys, args=args)
        self._noted(reply)

    def take_over_runs(
        self, now: datetime, limit: int, owner: str, expires: datetime
    ) -> list[InProgressRun]:
        """Take over expired run records and due pending retries, in one atomic script
        (see :meth:`BaseStore.take_over_runs`)."""
        args: list[Any] = [
            repr(now.timestamp()),
            limit,
            owner,
            repr(expires.timestamp()),
            # Leader-only tasks' runs are taken over by the leader only (the script
            # checks this term against the running one).
            self._leader.token(owner),
        ]
        keys = [*self._run_keys, self._leader.tasks_key, self._leader.term_key]
        with self._unavailable("take over abandoned runs and due retries"):
            reply = self._take_over(keys=keys, args=args)
        flat = self._noted(reply)
        taken: list[InProgressRun] = []
        unloaded: list[Any] = [owner]
        for index in range(0, len(flat), 5):
            key, previous, blob, attempt, due = (
                _text(flat[index]),
                _text(flat[index + 1]),
                flat[index + 2],
                int(flat[index + 3]),
                _text(flat[index + 4]),
            )
            score, _, task_id = key.partition("|")
            try:
                task = self.serializer.deserialize(blob)
            except SerializationError as exc:
                # Left to expire again: a scheduler that can load it may take it over.
                self.logger.error("cannot take over a run of task %r: %s", task_id, exc)
                unloaded.extend([key, previous, attempt if previous == "" else attempt - 1])
                continue
            task.store_alias = self.alias
            taken.append(
                InProgressRun(
                    task,
                    _in_zone(float(score), task),
                    previous,
                    attempt,
                    _in_zone(float(due), task) if previous == "" else None,
                )
            )
        if len(unloaded) > 1:
            with self._unavailable("take over abandoned runs and due retries"):
                self._noted(self._untake(keys=self._run_keys, args=unloaded))
        return taken

    def retry_runs(self, owner: str, retries: Collection[PendingRetry]) -> None:
        """Turn ``owner``'s run records into pending retries, in one atomic script (see
        :meth:`BaseStore.retry_runs`). A run without a record gets one; a record
        another scheduler holds now is left alone; a record whose cancellation was
        requested is deleted instead (the run is not tried again; logged)."""
        if not retries:
            return
        args: list[Any] = [owner]
        for retry in retries:
            args.extend(
                [
                    _run_key(retry.task.id, retry.run_time),
                    retry.task.id,
                    retry.attempt,
                    repr(retry.due.timestamp()),
                    self.serializer.serialize(retry.task),
                ]
            )
        with self._unavailable("record pending retries"):
            reply = self._retry(keys=self._run_keys, args=args)
        for key in self._noted(reply):
            score, _, task_id = _text(key).partition("|")
            self.logger.warning(
                "run of task %r scheduled at %s was to be retried, but its cancellation was "
                "requested: not retried",
                task_id,
                datetime.fromtimestamp(float(score), UTC).isoformat(),
            )

    def next_retry_time(self) -> datetime | None:
        """When the earliest pending retry is due (over every scheduler sharing the
        prefix)."""
        with self._unavailable("query the next retry time"):
            found = self._next_retry(keys=self._run_keys[1:3])
        return datetime.fromtimestamp(float(found), UTC) if found else None

    def cancel_runs(self, task_id: str, run_time: datetime | None = None) -> int:
        """Delete the pending retries of the runs and mark their records in progress, in
        one atomic script (see :meth:`BaseStore.cancel_runs`). A record already marked is
        not counted again. Without ``run_time`` the script reads the keys of every run
        record of the prefix (runs in progress and pending retries)."""
        key = _run_key(task_id, run_time) if run_time is not None else ""
        with self._unavailable("request cancellation of runs"):
            return int(self._cancel(keys=self._run_keys, args=[task_id, key]))

    def cancel_requests(self, owner: str) -> list[RunKey]:
        """``owner``'s runs in progress whose cancellation was requested (one script)."""
        with self._unavailable("read cancel requests"):
            keys = self._cancel_requests(keys=[self._run_keys[1], self._run_keys[5]], args=[owner])
        requests: list[RunKey] = []
        for key in keys:
            score, _, task_id = _text(key).partition("|")
            requests.append((task_id, datetime.fromtimestamp(float(score), UTC)))
        return requests

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest time a loadable task needs attention: its next run time,
        or the expiry of a claim another scheduler holds on it.

        Run times no datetime can hold (``inf``, 1e300: written by something else) are
        rewritten from the task's own next run time, and the question asked again."""
        keys = [
            self.run_times_key,
            self.claims_key,
            self.tasks_key,
            self._leader.tasks_key,
            self._leader.term_key,
        ]
        for _ in range(2):
            args = [self._leader.token(None), *self._broken.ids()]
            with self._unavailable("query the next run time"):
                found, notes = self._next_time(keys=keys, args=args)
            bad_scores = [
                (_text(notes[index + 1]), _text(notes[index + 2]))
                for index in range(0, len(notes), 3)
                if notes[index] == b"score"
            ]
            self._noted((None, notes))
            if not bad_scores or not self._rescore_all(bad_scores):
                break
        return datetime.fromtimestamp(float(found), UTC) if found else None

    def _rescore_all(self, bad_scores: list[tuple[str, str]]) -> bool:
        """Rewrite each ``(task id, score found)`` from the stored task; return whether
        any was rewritten (a task that cannot load is left to :class:`BrokenTasks`)."""
        rewritten = False
        for task_id, score in bad_scores:
            task = self.lookup_task(task_id)
            if task is None:
                continue
            when = task.next_run_time
            own = repr(when.timestamp()) if when is not None else ""
            with self._unavailable("repair a run time"):
                keys = [self.run_times_key, self.tasks_key]
                rewritten |= bool(self._rescore(keys=keys, args=[task_id, score, own]))
        return rewritten

    def get_tasks_by_tag(self, tag: str) -> list[Task]:
        """Return the tasks with ``tag``, by next run time, paused last: one script reads
        the tag's range of the index and their records (see
        :mod:`tickwork.stores._redis_tags`)."""
        with self._unavailable("list tasks by tag"):
            reply = self._tagged(keys=self._written_keys, args=[tag])
        tasks = [self._load(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
        found = [task for task in tasks if task is not None and tag in task.tags]
        found.sort(key=_tag_order)
        return found

    # -- acting on a tag: one read script and one compare-and-set write script -----------

    def _act_on_tag(
        self, tag: str, action: str, decide: Callable[[Task], Task | Literal["remove"] | None]
    ) -> tuple[list[Task], list[Task]]:
        """Read the tasks with ``tag`` (:data:`TAGGED`) and let ``decide`` change each
        (it returns the task, changed), remove it (``"remove"``) or leave it (``None``);
        then write all of them with one :data:`WRITE_TAGGED`. Records another writer changed in between are read and
        decided again (up to ``_TAG_ROUNDS`` rounds). Returns (written, removed)."""
        written: list[Task] = []
        removed: list[Task] = []
        wanted: set[str] | None = None  # (None: every task of the tag)
        for _ in range(_TAG_ROUNDS):
            with self._unavailable(action):
                reply = self._tagged(keys=self._written_keys, args=[tag])
            args: list[Any] = []
            planned: dict[str, tuple[Task, bool]] = {}
            for index in range(0, len(reply), 2):
                task_id, blob = _text(reply[index]), reply[index + 1]
                if wanted is not None and task_id not in wanted:
                    continue
                task = self._load(task_id, blob)
                if task is None or tag not in task.tags:
                    continue
                changed = decide(task)
                if changed is None:
                    continue
                remove = changed == "remove"
                if changed == "remove":
                    args.extend([task_id, blob, b"", ""])
                else:
                    _, new_blob, score = self._triple(changed)
                    args.extend([task_id, blob, new_blob, score])
                planned[task_id] = (task, remove)
            if not args:
                break
            with self._unavailable(action):
                reply = self._write_tagged(keys=self._keys_for_tags, args=args)
            conflicts = {_text(task_id) for task_id in reply}
            for task_id, (task, remove) in planned.items():
                if task_id in conflicts:
                    continue
                self._broken.forget(task_id)
                task.store_alias = self.alias
                (removed if remove else written).append(task)
            if not conflicts:
                break
            wanted = conflicts
        else:
            self.logger.warning(
                "Redis store %r: %s left tasks %s as they are: other writers changed them "
                "%d times in a row while this was done",
                self.alias,
                action,
                sorted(wanted or ()),
                _TAG_ROUNDS,
            )
        return written, removed

    def pause_tasks_by_tag(self, tag: str) -> list[Task]:
        """Pause the tasks with ``tag``: one read script and one write script (see
        :meth:`BaseStore.pause_tasks_by_tag` and :data:`WRITE_TAGGED`)."""

        def pause(task: Task) -> Task | Literal["remove"] | None:
            if task.next_run_time is None:
                return None
            task.next_run_time = None
            return task

        return self._act_on_tag(tag, "pause tasks by tag", pause)[0]

    def resume_tasks_by_tag(
        self, tag: str, next_run_time: NextRunTime
    ) -> tuple[list[Task], list[Task]]:
        """Resume the paused tasks with ``tag``: one read script and one write script (see
        :meth:`BaseStore.resume_tasks_by_tag`)."""

        def resume(task: Task) -> Task | Literal["remove"] | None:
            if task.next_run_time is not None:
                return None
            when = next_run_time(task)
            if when is None:
                return "remove"
            if when is False:
                return None
            task.next_run_time = when
            return task

        return self._act_on_tag(tag, "resume tasks by tag", resume)

    def remove_tasks_by_tag(self, tag: str) -> list[Task]:
        """Delete the tasks with ``tag`` (their claims and index entries too): one read
        script and one write script."""
        return self._act_on_tag(tag, "remove tasks by tag", lambda task: "remove")[1]

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

    def _make_run_log(self) -> RunLog:
        """The run records, under ``<prefix>:run_log:*`` (see :mod:`tickwork.runs.redis`):
        every scheduler sharing the store reads the same."""
        from tickwork.runs.redis import RedisRunLog

        return RedisRunLog(self.client, self.prefix, logger=self.logger)

    def __repr__(self) -> str:
        return f"<RedisStore alias={self.alias!r} prefix={self.prefix!r}>"


_REPAIR_MESSAGES = {
    "dangling": "removed the run-time entry of task {subject!r}: no task is stored under that id",
    "claim": "the claim on task {subject!r} is malformed ({value!r}); treated as free and replaced",
    "score": "the run time of task {subject!r} is not a time a datetime can hold ({value}); "
    "rewriting it from the stored task",
    "count": "the count of runs in progress of task {subject!r} is not an integer "
    "({value!r}); reset",
    "run": "dropped the record of run {subject!r} ({value}): it cannot be run again",
    "attempt": "the attempt of run {subject!r} is not a positive integer ({value!r}); read as 1",
    "tags": "task {subject!r} was changed while a scheduler held it for its runs (its tags "
    "were [{value}]); that scheduler's write-back stored the task as it claimed it, tags "
    "and index included, so the change is lost: make it again",
}


def _text(value: bytes | str | int) -> str:
    """A script's reply item as text (ids and values are UTF-8; garbage is shown escaped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _check_io_timeout(value: object) -> float:
    """``value`` as seconds for ``io_timeout``: a positive finite number, else
    :class:`~tickwork.exceptions.ConfigurationError` naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"io_timeout must be a positive finite number of seconds, got {value!r}"
        )
    return float(value)


def _in_zone(timestamp: float, task: Task) -> datetime:
    """The time in the zone of the task's trigger, when it has one (else UTC)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    zone = getattr(task.trigger, "timezone", None)
    return moment.astimezone(zone) if zone is not None else moment


def _run_key(task_id: str, run_time: datetime) -> str:
    """``"<repr of the epoch seconds>|<task id>"``: repr reads back to the same float."""
    return f"{run_time.timestamp()!r}|{task_id}"


def _tag_order(task: Task) -> tuple[int, float, str]:
    """By next run time, paused last, then by id (as ``get_all_tasks`` orders them)."""
    when = task.next_run_time
    return (1, 0.0, task.id) if when is None else (0, when.timestamp(), task.id)
