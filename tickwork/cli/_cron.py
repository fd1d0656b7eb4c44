"""``tickwork cron "EXPR" --tz ZONE -n 10``: when a crontab line fires, as tickwork's own
:class:`~tickwork.triggers.CronTrigger` computes it (its daylight-saving rules
included: a time that a spring-forward skips runs at the first valid time after it, an
hour that repeats in autumn runs once), with the offset changes marked. No store needed."""

from __future__ import annotations

import argparse
from datetime import datetime

from tickwork.cli._output import Output
from tickwork.cli._tasks import print_times

__all__ = ["cron"]


def cron(out: Output, args: argparse.Namespace) -> None:
    """Print the next ``-n`` times of the expression in the zone."""
    from tickwork.triggers import CronTrigger
    from tickwork.utils import local_timezone, to_timezone

    zone = (to_timezone(args.tz) if args.tz else None) or local_timezone()
    trigger = CronTrigger.from_crontab(args.expression, timezone=zone)
    now = datetime.now(zone)
    if args.start is not None:
        start: datetime = args.start
        now = start.replace(tzinfo=zone) if start.tzinfo is None else start.astimezone(zone)
    times: list[datetime] = []
    next_time = trigger.get_next_trigger_time(zone, None, now)
    while next_time is not None and len(times) < args.count:
        times.append(next_time)
        next_time = trigger.get_next_trigger_time(zone, next_time, now)
    print_times(out, times, f"{args.expression!r} in {zone}", args.count, now)
