"""Stores keep tasks. One module per backend; the contract is
:class:`~tickwork.stores.base.BaseStore`.

Backends that need optional libraries (SQLAlchemy, Redis) are imported on first use, so
``import tickwork.stores`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickwork._registry import Registry
from tickwork.stores._urls import store_from_url
from tickwork.stores.base import BaseStore
from tickwork.stores.memory import MemoryStore

if TYPE_CHECKING:
    from tickwork.stores.file import FileStore
    from tickwork.stores.redis import RedisStore
    from tickwork.stores.sqlalchemy import SQLAlchemyStore

__all__ = [
    "BaseStore",
    "FileStore",
    "MemoryStore",
    "RedisStore",
    "SQLAlchemyStore",
    "store_from_url",
    "store_registry",
]

#: Aliases accepted by ``stores={"name": {"type": "..."}}``.
store_registry = Registry(
    "store",
    {
        "memory": "tickwork.stores.memory:MemoryStore",
        "file": "tickwork.stores.file:FileStore",
        "sqlalchemy": "tickwork.stores.sqlalchemy:SQLAlchemyStore",
        "redis": "tickwork.stores.redis:RedisStore",
    },
)

_LAZY = {
    "FileStore": "tickwork.stores.file",
    "SQLAlchemyStore": "tickwork.stores.sqlalchemy",
    "RedisStore": "tickwork.stores.redis",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
