"""Support code for the store fixtures (importable by name, unlike ``conftest``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickwork.stores import BaseStore


class StoreMaker:
    """Builds started store objects of one backend on one location; shuts them all down."""

    def __init__(self, kind: str, factory: Callable[..., BaseStore]) -> None:
        self.kind = kind
        self.persistent = kind != "memory"
        self._factory = factory
        self._made: list[BaseStore] = []

    def __call__(self, alias: str = "default", start: bool = True, **options: Any) -> BaseStore:
        store = self._factory(**options)
        self._made.append(store)
        if start:
            store.start(alias)
        return store

    def close(self) -> None:
        for store in self._made:
            store.shutdown()
