"""The plug-ins of a scheduler: its stores (each behind a gate) and executors, by alias,
and the order they start and stop in."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tickwork.exceptions import ConfigurationError, UnknownAliasError
from tickwork.executors.base import BaseExecutor, ExecutorHost
from tickwork.schedulers._gate import StoreGate
from tickwork.stores.base import BaseStore

__all__ = ["Plugins", "build_plugin"]


class Plugins:
    """Stores, their gates and executors by alias. The dicts are shared with the parts
    that look plug-ins up (the dispatcher, the run keeper), so they change in place;
    whoever iterates over one takes a ``list()`` of it first."""

    def __init__(
        self, make_gate: Callable[[str, BaseStore], StoreGate], logger: logging.Logger
    ) -> None:
        self._make_gate = make_gate
        self._logger = logger
        self._lock = threading.Lock()
        self.stores: dict[str, BaseStore] = {}
        self.gates: dict[str, StoreGate] = {}
        self.executors: dict[str, BaseExecutor] = {}

    def store(self, alias: str) -> BaseStore:
        """The store named ``alias``; raises ``UnknownAliasError``."""
        try:
            return self.stores[alias]
        except KeyError:
            raise UnknownAliasError("store", alias, list(self.stores)) from None

    def add_store(self, store: BaseStore, alias: str) -> StoreGate:
        """Register ``store`` under ``alias`` (not started) and return its gate."""
        with self._lock:
            if alias in self.stores:
                raise ConfigurationError(f"this scheduler already has a store named {alias!r}")
            gate = self._make_gate(alias, store)
            self.stores[alias] = store
            self.gates[alias] = gate
        return gate

    def remove_store(self, alias: str) -> StoreGate:
        """Unregister a store; returns its gate (the caller closes it)."""
        with self._lock:
            if alias not in self.stores:
                raise UnknownAliasError("store", alias, list(self.stores))
            del self.stores[alias]
            gate = self.gates.pop(alias)
        return gate

    def add_executor(self, executor: BaseExecutor, alias: str) -> None:
        """Register ``executor`` under ``alias`` (not started)."""
        with self._lock:
            if alias in self.executors:
                raise ConfigurationError(f"this scheduler already has an executor named {alias!r}")
            self.executors[alias] = executor

    def remove_executor(self, alias: str) -> BaseExecutor:
        """Unregister an executor and return it."""
        with self._lock:
            executor = self.executors.pop(alias, None)
            if executor is None:
                raise UnknownAliasError("executor", alias, list(self.executors))
        return executor

    def start(self, host: ExecutorHost, lock_path: str | None) -> None:
        """Start executors, then stores, then open the gates (executors first: a store
        may hand out due tasks as soon as it runs)."""
        for alias, executor in list(self.executors.items()):
            executor.start(host, alias)
        for alias, store in list(self.stores.items()):
            store.start(alias)
        for gate in list(self.gates.values()):
            gate.open(lock_path)

    def stop_executors(self, wait: bool) -> list[Exception]:
        """Shut every executor down. One that fails is logged and the others still stop;
        the failures are returned so the caller re-raises the first once the whole
        shutdown is done (never leaving the scheduler half stopped)."""
        errors: list[Exception] = []
        for alias, executor in list(self.executors.items()):
            try:
                executor.shutdown(wait)
            except Exception as exc:
                self._logger.exception("executor %r failed to shut down", alias)
                errors.append(exc)
        return errors

    async def stop_executors_async(self, wait: bool) -> list[Exception]:
        """:meth:`stop_executors` for schedulers on an event loop."""
        errors: list[Exception] = []
        for alias, executor in list(self.executors.items()):
            try:
                await executor.shutdown_async(wait)
            except Exception as exc:
                self._logger.exception("executor %r failed to shut down", alias)
                errors.append(exc)
        return errors

    def wait_executors_idle(self, timeout: float | None = None) -> bool:
        """Block until no executor has an active run, or ``timeout`` seconds passed (one
        deadline for all of them); return whether they are idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for executor in list(self.executors.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not executor.wait_until_idle(left):
                return False
        return True

    async def wait_executors_idle_async(self, timeout: float | None = None) -> bool:
        """:meth:`wait_executors_idle` without blocking the loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for executor in list(self.executors.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not await executor.wait_until_idle_async(left):
                return False
        return True

    def cancel_active(self, reason: str) -> None:
        """Ask every executor to cancel the runs it can (coroutines)."""
        for executor in list(self.executors.values()):
            executor.cancel_active(reason)

    def active_task_ids(self) -> dict[str, list[str]]:
        """The ids of the tasks with active runs, by executor alias (busy ones only)."""
        active = {alias: e.active_task_ids() for alias, e in list(self.executors.items())}
        return {alias: ids for alias, ids in active.items() if ids}

    def close_stores(self) -> None:
        """Close every gate (lock released) and shut its store down (tasks are kept)."""
        for gate in list(self.gates.values()):
            gate.close()
        for store in list(self.stores.values()):
            try:
                store.shutdown()
            except Exception:
                self._logger.exception("store %r failed to shut down", store.alias)

    def runs_caller(self) -> bool:
        """True when the caller is one of the executors' runs."""
        return any(executor.runs_caller() for executor in list(self.executors.values()))


def build_plugin(registry: Any, base: type, value: Any, options: dict[str, Any]) -> Any:
    """An instance from an instance, an alias with ``options``, or a ``{"type": ...}``
    dict (the three ways a store or executor may be given)."""
    if isinstance(value, base):
        if options:
            raise ConfigurationError(
                f"options {sorted(options)} go with an alias, not with {value!r}"
            )
        return value
    if isinstance(value, str):
        return registry.create(value, dict(options))
    if isinstance(value, dict) or hasattr(value, "keys"):
        config = {**value, **options}
        kind = config.pop("type", None)
        if kind is None:
            raise ConfigurationError(f"{registry.kind} config {dict(value)!r} needs a 'type' key")
        return registry.create(kind, config)
    raise ConfigurationError(
        f"a {registry.kind} must be a {base.__name__}, an alias or a dict with 'type', got {value!r}"
    )
