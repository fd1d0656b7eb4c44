"""Serializers turn tasks into bytes for persistent stores, and back.

One module per format; the contract is :class:`~tickwork.serializers.base.BaseSerializer`.
:class:`JSONSerializer` is the default of every persistent store; choose
:class:`PickleSerializer` with ``serializer="pickle"`` (or an instance) when arguments are
objects JSON cannot express.
"""

from __future__ import annotations

from tickwork._registry import Registry
from tickwork.exceptions import ConfigurationError
from tickwork.serializers.base import BaseSerializer
from tickwork.serializers.json import JSONSerializer
from tickwork.serializers.pickle import PickleSerializer

__all__ = [
    "BaseSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "resolve_serializer",
    "serializer_registry",
]

#: Aliases accepted by a store's ``serializer="..."`` option.
serializer_registry = Registry(
    "serializer",
    {
        "json": "tickwork.serializers.json:JSONSerializer",
        "pickle": "tickwork.serializers.pickle:PickleSerializer",
    },
)


def resolve_serializer(serializer: BaseSerializer | str | None) -> BaseSerializer:
    """Return ``serializer`` itself, the serializer registered under that alias, or a new
    :class:`JSONSerializer` for ``None``."""
    if serializer is None:
        return JSONSerializer()
    if isinstance(serializer, BaseSerializer):
        return serializer
    if isinstance(serializer, str):
        created: BaseSerializer = serializer_registry.create(serializer, {})
        return created
    raise ConfigurationError(
        f"serializer must be a BaseSerializer, an alias ({', '.join(serializer_registry.aliases())}) "
        f"or None, got {serializer!r}"
    )
