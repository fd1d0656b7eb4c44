"""Executors run tasks. One module per backend; the contract is
:class:`~tickwork.executors.base.BaseExecutor`."""

from __future__ import annotations

from tickwork._registry import Registry
from tickwork.executors.asyncio import AsyncIOExecutor
from tickwork.executors.base import BaseExecutor
from tickwork.executors.debug import DebugExecutor
from tickwork.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor

__all__ = [
    "AsyncIOExecutor",
    "BaseExecutor",
    "DebugExecutor",
    "ProcessPoolExecutor",
    "ThreadPoolExecutor",
    "executor_registry",
]

#: Aliases accepted by ``executors={"name": {"type": "..."}}``.
executor_registry = Registry(
    "executor",
    {
        "asyncio": "tickwork.executors.asyncio:AsyncIOExecutor",
        "threadpool": "tickwork.executors.pool:ThreadPoolExecutor",
        "processpool": "tickwork.executors.pool:ProcessPoolExecutor",
        "debug": "tickwork.executors.debug:DebugExecutor",
        "celery": "tickwork.executors.celery:CeleryExecutor",
    },
)
