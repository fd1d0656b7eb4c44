"""References, time helpers and lifecycle wrappers."""

from __future__ import annotations

import asyncio
import functools
import operator
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import ReferenceResolutionError
from tickwork.utils import (
    make_async_function,
    make_function,
    obj_to_ref,
    ref_to_obj,
    timestamp,
    to_datetime,
    to_timedelta,
)


class Holder:
    def method(self) -> None: ...

    @classmethod
    def build(cls) -> Holder:
        return cls()


def test_reference_round_trip() -> None:
    assert ref_to_obj(obj_to_ref(operator.add)) is operator.add
    assert ref_to_obj("operator:add") is operator.add
    assert ref_to_obj(obj_to_ref(Holder.build)) == Holder.build
    assert obj_to_ref(Holder) == f"{__name__}:Holder"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (lambda: None, "lambda"),
        (functools.partial(operator.add, 1), "partial"),
        (Holder().method, "bound method"),
    ],
)
def test_objects_without_reference(value: object, reason: str) -> None:
    with pytest.raises(ReferenceResolutionError, match=reason):
        obj_to_ref(value)


def test_nested_function_has_no_reference() -> None:
    def inner() -> None: ...

    with pytest.raises(ReferenceResolutionError, match="nested"):
        obj_to_ref(inner)


def test_time_coercion() -> None:
    utc = UTC
    assert to_datetime("2026-01-02T03:04:05", utc, "x") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc)
    assert to_timedelta(1.5, "x") == timedelta(seconds=1.5)
    with pytest.raises(ValueError, match="not an ISO"):
        to_datetime("tomorrow", utc, "run_at")


def test_generator_lifecycle_with_make_function() -> None:
    log: list[str] = []

    def lifecycle() -> Generator[None, bool, None]:
        log.append("setup")
        while (yield):
            log.append("tick")
        log.append("cleanup")

    gen = lifecycle()
    next(gen)
    tick = make_function(gen.send)
    tick(True)
    tick(True)
    assert tick(False) is None  # the generator finishing is the normal end, not an error
    assert log == ["setup", "tick", "tick", "cleanup"]


def test_async_generator_lifecycle_with_make_async_function() -> None:
    log: list[str] = []

    async def lifecycle() -> AsyncGenerator[None, bool]:
        log.append("setup")
        while (yield):
            log.append("tick")
        log.append("cleanup")

    async def main() -> None:
        gen = lifecycle()
        await gen.asend(None)
        tick = make_async_function(gen.asend)
        await tick(True)
        await tick(False)

    asyncio.run(main())
    assert log == ["setup", "tick", "cleanup"]


def test_timestamp_is_the_same_float_as_the_method() -> None:
    zones = [UTC, ZoneInfo("UTC"), ZoneInfo("Etc/GMT-3"), timezone(timedelta(hours=-7)), None]
    zones += [ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
    base = datetime(2026, 10, 25, 0, 59, 59, 999_999)
    for zone in zones:
        for step in range(0, 200_000, 997):
            moment = (base + timedelta(seconds=step * 0.6123)).replace(tzinfo=zone)
            for fold in (0, 1):
                value = moment.replace(fold=fold)
                assert timestamp(value) == value.timestamp(), (zone, value)
