"""FakeClock: moves only when told to, by any amount a test finds natural to write."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickwork.clock import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "keywords", "step"),
    [
        ((), {"days": 1}, timedelta(days=1)),
        ((), {"hours": 2, "minutes": 30}, timedelta(hours=2, minutes=30)),
        ((), {"weeks": 1, "seconds": 0.5}, timedelta(weeks=1, seconds=0.5)),
        ((timedelta(hours=1),), {"minutes": 5}, timedelta(hours=1, minutes=5)),
        ((90,), {}, timedelta(seconds=90)),
        ((1.5,), {"seconds": 1}, timedelta(seconds=2.5)),
        ((), {}, timedelta(0)),
    ],
)
def test_advance_takes_a_timedelta_seconds_or_timedelta_keywords(
    args: tuple[object, ...], keywords: dict[str, float], step: timedelta
) -> None:
    clock = FakeClock(T0)
    assert clock.advance(*args, **keywords) == T0 + step  # type: ignore[arg-type]
    assert clock.now() == T0 + step


def test_advance_wakes_the_subscribers() -> None:
    clock = FakeClock(T0)
    woken: list[datetime] = []
    clock.subscribe(lambda: woken.append(clock.now()))
    clock.advance(days=1)
    assert woken == [T0 + timedelta(days=1)]


@pytest.mark.parametrize(
    ("args", "keywords", "error", "words"),
    [
        ((), {"days": -1}, ValueError, ["backwards", "set()"]),
        ((timedelta(hours=1),), {"hours": -2}, ValueError, ["backwards"]),
        ((), {"hours": math.nan}, ValueError, ["hours=nan", "finite"]),
        ((math.inf,), {}, ValueError, ["delta=inf", "finite"]),
        ((), {"days": 1e300}, ValueError, ["days=1e+300"]),
        ((), {"minutes": "5"}, TypeError, ["minutes='5'"]),
        (("5",), {}, TypeError, ["delta='5'"]),
        ((), {"seconds": True}, TypeError, ["seconds=True"]),
    ],
)
def test_advance_refuses_steps_it_cannot_take_naming_them(
    args: tuple[object, ...], keywords: dict[str, object], error: type[Exception], words: list[str]
) -> None:
    clock = FakeClock(T0)
    with pytest.raises(error) as caught:
        clock.advance(*args, **keywords)  # type: ignore[arg-type]
    for word in words:
        assert word in str(caught.value)
    assert clock.now() == T0  # not moved


def test_advance_is_elapsed_time_in_a_dst_zone() -> None:
    clock = FakeClock(datetime(2026, 3, 28, 12, tzinfo=ZoneInfo("Europe/Berlin")))
    clock.advance(days=1)  # the night the clocks spring forward: 24 elapsed hours
    assert clock.now().isoformat() == "2026-03-29T13:00:00+02:00"


def test_a_time_in_a_pytz_zone_is_kept_as_its_instant_in_the_zoneinfo_zone() -> None:
    pytz = pytest.importorskip("pytz")
    berlin = pytz.timezone("Europe/Berlin")
    clock = FakeClock(berlin.localize(datetime(2026, 3, 28, 12)))
    assert clock.now().tzinfo == ZoneInfo("Europe/Berlin")
    clock.set(datetime(2026, 3, 29, 9, tzinfo=berlin))  # not localized: the wall time
    assert clock.now().isoformat() == "2026-03-29T09:00:00+02:00"
