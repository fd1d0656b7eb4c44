"""The alias registries: lookups and keyword checks are cached, and the cache follows
``register``."""

from __future__ import annotations

import pytest

from tickwork.exceptions import InvalidTriggerError, UnknownAliasError
from tickwork.triggers import DateTrigger, IntervalTrigger, create_trigger, trigger_registry


def test_a_checked_keyword_set_does_not_let_another_through() -> None:
    assert isinstance(create_trigger("interval", seconds=5), IntervalTrigger)
    assert isinstance(create_trigger("interval", seconds=5), IntervalTrigger)  # cached path
    with pytest.raises(InvalidTriggerError, match="secnds"):
        create_trigger("interval", secnds=5)
    with pytest.raises(InvalidTriggerError, match="must be a number"):
        create_trigger("interval", seconds="5")  # same keywords, bad value: still checked


def test_registering_an_alias_replaces_what_was_cached() -> None:
    assert isinstance(create_trigger("interval", seconds=5), IntervalTrigger)
    try:
        trigger_registry.register("interval", DateTrigger)
        assert trigger_registry.lookup("interval") is DateTrigger
        with pytest.raises(InvalidTriggerError, match="seconds"):
            create_trigger("interval", seconds=5)  # DateTrigger takes no seconds
    finally:
        trigger_registry.register("interval", IntervalTrigger)
    assert isinstance(create_trigger("interval", seconds=5), IntervalTrigger)


def test_unknown_alias_is_named() -> None:
    with pytest.raises(UnknownAliasError, match="'intervall'"):
        create_trigger("intervall", seconds=5)
