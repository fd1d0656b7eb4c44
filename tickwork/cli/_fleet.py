"""``tickwork fleet``: the schedulers working a store, and which of them leads."""

from __future__ import annotations

import argparse
from datetime import datetime

from tickwork.admin import fleet_members
from tickwork.cli._output import Output, human_time
from tickwork.cli._targets import Target

__all__ = ["fleet"]


def fleet(target: Target, out: Output, args: argparse.Namespace) -> None:
    """The leader's term (as the electing store records it) and every scheduler seen
    at work in the run records, the leader first."""
    term = target.scheduler.get_leader()
    members = fleet_members(target.scheduler)
    out.data(
        {
            "leader": None
            if term is None
            else {"identity": term.owner, "generation": term.generation,
                  "expires_in": round(term.expires_in, 3)},
            "members": members,
        }
    )  # fmt: skip
    if term is None:
        out.line("leader: none (no term runs, or no store of this target elects one)")
    else:
        out.line(
            f"leader: {term.owner} (term {term.generation}, lease ends in "
            f"{term.expires_in:.1f} s unless renewed)"
        )
    rows = [
        [
            member["identity"] + (" (leader)" if member["is_leader"] else ""),
            str(member["running"]),
            str(member["recent_runs"]),
            human_time(_parse(member["last_seen"])),
        ]
        for member in members
    ]
    out.table(
        ["SCHEDULER", "RUNNING", "RECENT RUNS", "LAST SEEN AT WORK"], rows, "no scheduler seen"
    )


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
