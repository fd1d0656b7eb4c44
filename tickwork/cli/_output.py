"""How the commands print: aligned tables and readable times for people, JSON for
scripts (``--json``: times as ISO 8601 with their offset, durations in seconds)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, TextIO

__all__ = ["Output", "human_duration", "human_time", "long_time"]


class Output:
    """Where a command's result goes: ``json`` picks the form."""

    def __init__(self, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json = json_mode
        self._stream = stream or sys.stdout

    def line(self, text: str = "") -> None:
        """One line for people (not written in JSON mode)."""
        if not self.json:
            print(text, file=self._stream)

    def data(self, value: Any) -> None:
        """``value`` as JSON (written in JSON mode only)."""
        if self.json:
            print(
                json.dumps(value, default=_jsonable, indent=2, ensure_ascii=False),
                file=self._stream,
            )

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
        """Columns aligned with two spaces between them; ``empty`` when there are no rows."""
        if not rows:
            self.line(empty)
            return
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self.line("  ".join(cells).rstrip())

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """``name: value`` lines with the values aligned."""
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            self.line(f"{name + ':':<{width + 1}} {value}")


def _jsonable(value: object) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return repr(value)


def human_time(moment: datetime | None) -> str:
    """``2026-12-07 09:00:00 CET``: to the second, in the time's own zone."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def long_time(moment: datetime) -> str:
    """``Mon 2026-12-07 09:00:00 CET (UTC+01:00)``: with the weekday and the offset."""
    offset = moment.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "no offset"
    return f"{moment.strftime('%a %Y-%m-%d %H:%M:%S %Z').rstrip()} ({offset})"


def human_duration(seconds: float | None) -> str:
    """``85 µs``, ``0.4 ms``, ``2.35 s``, ``3 min 04 s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1_000_000:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
