"""References, time helpers and lifecycle wrappers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import operator
import re
from collections.abc import AsyncGenerator, Callable, Generator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import ConfigurationError, InvalidTaskError, ReferenceResolutionError
from tickwork.utils import (
    check_callable_args,
    from_pytz_datetime,
    is_pytz,
    make_async_function,
    make_function,
    obj_to_ref,
    ref_to_obj,
    timestamp,
    to_datetime,
    to_timedelta,
    to_timezone,
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


def test_obj_to_ref_raises_the_import_error_its_docstring_names() -> None:
    with pytest.raises(ImportError) as caught:
        obj_to_ref(lambda: None)
    assert isinstance(caught.value, ReferenceResolutionError)
    assert not isinstance(caught.value, ValueError)
    doc = obj_to_ref.__doc__ or ""
    assert "ImportError" in doc
    assert "ValueError" not in doc


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 1e300, pytest.param(10**400, id="10**400")]
)
def test_to_timedelta_refuses_values_no_timedelta_holds(value: float) -> None:
    with pytest.raises(ConfigurationError, match=rf"jitter.*{re.escape(repr(value)[:20])}"):
        to_timedelta(value, "jitter")


# -- pytz zones -----------------------------------------------------------------------------


def test_pytz_zones_become_their_standard_library_equivalents() -> None:
    pytz = pytest.importorskip("pytz")
    assert to_timezone(pytz.utc) is UTC
    assert to_timezone(pytz.timezone("UTC")) is UTC
    assert to_timezone(pytz.timezone("Europe/Berlin")) == ZoneInfo("Europe/Berlin")
    assert to_timezone(pytz.timezone("Etc/GMT-3")) == ZoneInfo("Etc/GMT-3")
    assert to_timezone(pytz.FixedOffset(-90)) == timezone(timedelta(minutes=-90))
    berlin = ZoneInfo("Europe/Berlin")
    assert to_timezone(berlin) is berlin  # everything else as it is
    assert not is_pytz(berlin)
    assert is_pytz(pytz.FixedOffset(60))


def test_datetimes_in_pytz_zones_keep_their_instant_or_their_wall_time() -> None:
    pytz = pytest.importorskip("pytz")
    new_york = pytz.timezone("America/New_York")
    zone = ZoneInfo("America/New_York")
    # localized (both passes of the repeated hour, and summer): the instant is kept
    for naive, is_dst in [
        (datetime(2026, 11, 1, 1, 30), True),
        (datetime(2026, 11, 1, 1, 30), False),
        (datetime(2026, 7, 4, 12), False),
    ]:
        localized = new_york.localize(naive, is_dst=is_dst)
        converted = to_datetime(localized, UTC, "run_at")
        assert converted is not None
        assert converted.tzinfo is zone
        assert converted.astimezone(UTC) == localized.astimezone(UTC)
        # (compared in UTC: across zones, a time in a repeated hour never compares equal)
        assert from_pytz_datetime(localized).astimezone(UTC) == localized.astimezone(UTC)
    # given as tzinfo= (local mean time, -04:56): the wall time is meant
    mistaken = datetime(2026, 7, 4, 12, tzinfo=new_york)
    assert from_pytz_datetime(mistaken).isoformat() == "2026-07-04T12:00:00-04:00"
    # a fixed pytz offset keeps its wall time and offset
    fixed = datetime(2026, 7, 4, 12, tzinfo=pytz.FixedOffset(330))
    assert from_pytz_datetime(fixed).isoformat() == "2026-07-04T12:00:00+05:30"
    plain = datetime(2026, 7, 4, 12, tzinfo=zone)
    assert from_pytz_datetime(plain) is plain


# -- decorated callables: which signature is checked ------------------------------------


def two(x: int, y: int) -> int:
    return x + y


def supplies_the_first_argument(fn: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(fn)
    def wrapper(y: int) -> int:  # its own signature says what it takes
        return fn(1, y)

    return wrapper


def adds_a_parameter(fn: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(fn)
    def wrapper(scale: int, *args: Any, **kwargs: Any) -> int:
        return scale * fn(*args, **kwargs)

    return wrapper


def passes_through(fn: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        return fn(*args, **kwargs)

    return wrapper


def injects_through_bare_args(fn: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        return fn(1, *args, **kwargs)

    # declared: inspect and tickwork take this as the wrapper's signature
    wrapper.__signature__ = inspect.signature(lambda y: None)  # type: ignore[attr-defined]
    return wrapper


def test_a_decorator_that_changes_the_parameters_is_checked_by_its_own_signature() -> None:
    check_callable_args(supplies_the_first_argument(two), [2], {})
    check_callable_args(adds_a_parameter(two), [10, 1, 2], {})
    check_callable_args(adds_a_parameter(passes_through(two)), [10, 1, 2], {})
    check_callable_args(injects_through_bare_args(two), [2], {})
    with pytest.raises(InvalidTaskError, match=r"two\(y: [^,]*\).*args=\(1, 2\)"):
        check_callable_args(supplies_the_first_argument(two), [1, 2], {})


def test_a_pass_through_wrapper_is_checked_against_what_it_wraps() -> None:
    check_callable_args(passes_through(two), [1, 2], {})
    check_callable_args(passes_through(passes_through(two)), [1], {"y": 2})
    with pytest.raises(InvalidTaskError) as caught:
        check_callable_args(passes_through(two), [1], {})
    message = str(caught.value)
    assert re.search(r"two\(x: .*, y: .*\)", message)
    assert "args=(1,)" in message
    assert "__signature__" in message  # the way out for a decorator that injects arguments


class Service:
    @adds_a_parameter
    def run(self, x: int) -> int:
        return x

    @passes_through
    def plain(self, x: int) -> int:
        return x


def test_decorated_methods_are_checked_without_their_self() -> None:
    service = Service()
    check_callable_args(service.run, [3, 1], {})
    check_callable_args(service.plain, [1], {})
    with pytest.raises(InvalidTaskError, match="args=\\(1, 2\\)"):
        check_callable_args(service.plain, [1, 2], {})
