"""The scheduler's side of :mod:`tickwork.security`: its keywords turned into a policy,
applied to each store as it is added, refused records reported as events, and
re-signing (``resign_tasks``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tickwork.events import TASK_SET_ASIDE, TaskEvent
from tickwork.exceptions import SerializationError
from tickwork.schedulers._events import EventHub
from tickwork.security.policy import SecurityPolicy
from tickwork.stores.base import BaseStore

__all__ = ["StoreSecurity", "pop_allowed_modules"]


def pop_allowed_modules(
    task_defaults: Mapping[str, Any] | None, allowed_modules: Iterable[str] | None
) -> tuple[Mapping[str, Any] | None, Iterable[str] | None]:
    """Take ``allowed_modules`` out of ``task_defaults`` (where it may be given too: it
    is a rule for every task) and merge it with the keyword."""
    if not task_defaults or "allowed_modules" not in task_defaults:
        return task_defaults, allowed_modules
    rest = dict(task_defaults)
    listed = rest.pop("allowed_modules")
    if allowed_modules is None:
        return rest, listed
    return rest, (*allowed_modules, *listed)


class StoreSecurity:
    """Applies one :class:`SecurityPolicy` to every store of a scheduler."""

    def __init__(self, policy: SecurityPolicy, events: EventHub, logger: logging.Logger) -> None:
        self.policy = policy
        self._events = events
        self._logger = logger

    def protect(self, alias: str, store: BaseStore) -> None:
        """Wrap ``store``'s serializer (see :meth:`SecurityPolicy.protect`)."""
        self.policy.protect(store, alias, self._refused)

    def _refused(self, alias: str, task_id: str | None, exc: SerializationError) -> None:
        # The store logs the record it skips (once); this is the event of it, so a
        # forged record is as visible to listeners as a task set aside by the pass.
        self._events.emit(TaskEvent(TASK_SET_ASIDE, task_id or "?", alias, exception=exc))

    def resign(self, stores: Mapping[str, BaseStore]) -> int:
        """Rewrite the tasks of ``stores`` with the current keys; return how many."""
        count = 0
        for alias, store in stores.items():
            done = self.policy.resign(store)
            self._logger.info("re-signed %d task(s) of store %r", done, alias)
            count += done
        return count
