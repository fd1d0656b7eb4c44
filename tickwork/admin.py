"""Administering a store that a fleet runs, from a process that runs nothing: what the
admin app (``tickwork.web``) and the ``tickwork`` command do with ``--store URL``.

:func:`open_admin` returns a scheduler started *paused* on the store: it reads and
changes tasks and runs with the usual methods (``get_tasks``, ``pause_task``,
``get_runs``, ``cancel_run``, …) and every change reaches the fleet through the store,
as the fleet's members poll it. It runs nothing itself: ``request_run`` (not
``run_task``) asks the fleet for a run.

:class:`AdminTarget` is the part of a scheduler that the admin surfaces use, so they work
the same on an application's running scheduler and on an admin-only one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from tickwork.stores import store_from_url

if TYPE_CHECKING:
    from tickwork.runs import RunRecord
    from tickwork.schedulers.background import BackgroundScheduler
    from tickwork.stores.base import LeaderTerm
    from tickwork.tasks import Task

__all__ = ["AdminTarget", "administer", "fleet_members", "open_admin"]


class AdminTarget(Protocol):
    """What an admin surface may ask of a scheduler (a running one, or one from
    :func:`open_admin`). Every change goes through these methods, so it sends the
    usual events and, on a shared store, reaches the fleet."""

    identity: str

    @property
    def running(self) -> bool: ...

    def get_scheduler_info(self) -> dict[str, Any]: ...

    def get_leader(self, store: str | None = None) -> LeaderTerm | None: ...

    def get_tasks(self, store: str | None = None) -> list[Task]: ...

    def get_task_page(
        self,
        search: str = "",
        paused: bool | None = None,
        offset: int = 0,
        limit: int = 50,
        store: str | None = None,
    ) -> tuple[list[Task], int]: ...

    def get_task(self, task_id: str, store: str | None = None) -> Task | None: ...

    def get_task_info(self, task_id: str, store: str | None = None) -> dict[str, Any]: ...

    def preview_task_runs(
        self, task_id: str, count: int = 5, store: str | None = None
    ) -> list[datetime]: ...

    def pause_task(self, task_id: str, store: str | None = None) -> Task: ...

    def resume_task(self, task_id: str, store: str | None = None) -> Task | None: ...

    def delete_task(self, task_id: str, store: str | None = None) -> None: ...

    def reschedule_task(
        self, task_id: str, store: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> Task: ...

    def request_run(self, task_id: str, store: str | None = None) -> str: ...

    def get_runs(
        self,
        task_id: str | None = None,
        *,
        store: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]: ...

    def cancel_run(self, run_id: str) -> bool: ...


def open_admin(
    url: str,
    *,
    tablename: str | None = None,
    prefix: str | None = None,
    identity: str | None = None,
    signing_key: bytes | str | None = None,
    encryption_key: bytes | None = None,
    **store_options: Any,
) -> BackgroundScheduler:
    """A scheduler on the store ``url`` names (see
    :func:`~tickwork.stores.store_from_url`), started paused: it administers the store
    and runs nothing. Call ``shutdown()`` when done (or use :func:`administer`).

    A fleet that signs or encrypts its records (``docs/security.md``) is administered
    with the same ``signing_key`` / ``encryption_key``: without them its tasks do not
    load, and what the admin writes would be set aside by the fleet.

    Its identity defaults to ``"admin:<host>-<pid>"``: the run records and logs of the
    fleet then say which changes came from an admin process."""
    from tickwork.schedulers.background import BackgroundScheduler

    store = store_from_url(url, tablename=tablename, prefix=prefix, **store_options)
    scheduler = BackgroundScheduler(
        stores={"default": store},
        identity=identity or f"admin:{socket.gethostname()}-{os.getpid()}",
        signing_key=signing_key,
        encryption_key=encryption_key,
    )
    scheduler.start(paused=True)
    return scheduler


@contextmanager
def administer(url: str, **options: Any) -> Iterator[BackgroundScheduler]:
    """:func:`open_admin` as a context manager: shut down on leaving the block."""
    scheduler = open_admin(url, **options)
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


def fleet_members(target: AdminTarget, recent: int = 500) -> list[dict[str, Any]]:
    """The fleet as an operator sees it (the dashboard's fleet page, ``tickwork
    fleet``): the schedulers seen working the stores, from the run records (there is
    no registry of members), each with its runs in progress (their leases), the runs
    seen among the ``recent`` latest, and when it was last seen at work (ISO 8601);
    and the leader, as the electing store records its term, listed first, even before
    it has run anything. Plain JSON-ready dicts; blocking (store reads)."""
    members: dict[str, dict[str, Any]] = {}

    def member(name: str) -> dict[str, Any]:
        return members.setdefault(
            name,
            {"identity": name, "running": 0, "recent_runs": 0, "last_seen": None,
             "is_leader": False, "leader_generation": None},
        )  # fmt: skip

    for record in target.get_runs(limit=recent):
        seen_by = member(record.scheduler or "(unknown)")
        seen_by["recent_runs"] += 1
        if record.outcome == "running":
            seen_by["running"] += 1
        seen = record.finished_at or record.started_at or record.scheduled_run_time
        if seen_by["last_seen"] is None or seen > seen_by["last_seen"]:
            seen_by["last_seen"] = seen
    term = target.get_leader()
    if term is not None:
        leader = member(term.owner)
        leader["is_leader"] = True
        leader["leader_generation"] = term.generation
    # The leader first, then by last seen at work, latest first.
    result = sorted(
        members.values(),
        key=lambda m: (
            not m["is_leader"],
            m["last_seen"] is None,
            -(m["last_seen"].timestamp() if m["last_seen"] is not None else 0.0),
        ),
    )
    for entry in result:
        seen = entry["last_seen"]
        entry["last_seen"] = seen.isoformat() if seen is not None else None
        entry["is_this_process"] = entry["identity"] == target.identity
    return result
