"""``tickwork cron``: next times of a crontab line in a zone, as tickwork's CronTrigger
computes them, with the daylight-saving changes marked. Pure computation, so most cases
call ``main()`` in this process; one runs the real command."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from cli_helpers import tickwork

from tickwork.cli import ExitCode, main
from tickwork.triggers import CronTrigger


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_spring_forward_is_marked_and_the_skipped_time_runs_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(
        capsys, "cron", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "4", "--start", "2027-03-26"
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "next 4 run time(s) of '30 2 * * *' in Europe/Berlin:",
        "  Fri 2027-03-26 02:30:00 CET (UTC+01:00)",
        "  Sat 2027-03-27 02:30:00 CET (UTC+01:00)",
        "  Sun 2027-03-28 03:00:00 CEST (UTC+02:00)   <- UTC offset +01:00 → +02:00 "
        "(daylight saving time starts)",
        "  Mon 2027-03-29 02:30:00 CEST (UTC+02:00)",
    ]


def test_json_matches_the_trigger_and_marks_the_autumn_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(
        capsys,
        "cron",
        "0 9 * * mon-fri",
        "--tz",
        "Europe/Berlin",
        "-n",
        "6",
        "--start",
        "2027-10-27T12:00:00+02:00",
        "--json",
    )
    assert code == 0
    items = json.loads(out)
    times = [datetime.fromisoformat(item["time"]) for item in items]
    trigger = CronTrigger.from_crontab("0 9 * * mon-fri", timezone="Europe/Berlin")
    expected, previous = [], None
    start = datetime.fromisoformat("2027-10-27T12:00:00+02:00")
    for _ in range(6):
        previous = trigger.get_next_trigger_time(trigger.timezone, previous, start)
        expected.append(previous)
    assert times == expected
    assert [t.strftime("%a %d") for t in times] == [
        "Thu 28",
        "Fri 29",
        "Mon 01",
        "Tue 02",
        "Wed 03",
        "Thu 04",
    ]
    changes = [(i, item["offset_change"]) for i, item in enumerate(items) if item["offset_change"]]
    assert changes == [(2, "UTC offset +02:00 → +01:00 (daylight saving time ends)")]


def test_a_start_without_offset_is_in_the_zone(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        capsys, "cron", "@hourly", "--tz", "Asia/Tokyo", "-n", "1", "--start", "2027-01-01T10:30"
    )
    assert code == 0
    assert out.splitlines()[1] == "  Fri 2027-01-01 11:00:00 JST (UTC+09:00)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cron", "61 * * * *"], "tickwork: error: "),
        (
            ["cron", "0 9 * * *", "--tz", "Mars/Olympus"],
            "tickwork: error: unknown time zone 'Mars/Olympus'",
        ),
    ],
)
def test_bad_expression_or_zone_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_main(capsys, *args)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_the_real_command() -> None:
    result = tickwork(
        "cron", "0 0 1 1 *", "--tz", "UTC", "-n", "2", "--start", "2030-06-01", "--json"
    )
    assert result.code == 0, result
    assert [item["time"] for item in result.json()] == [
        "2031-01-01T00:00:00+00:00",
        "2032-01-01T00:00:00+00:00",
    ]
