"""What the run-log backends share: the rule of :mod:`tickwork.runs` within one batch,
the JSON form of a record (with every field checked on the way in, so a damaged record
is reported, never returned half-read), and reporting damaged records once."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

from tickwork.runs import OUTCOMES, RunRecord

__all__ = [
    "CANONICAL_RUN_ID",
    "FORMAT_VERSION",
    "DamageLog",
    "DamagedRecord",
    "apply_rule",
    "check_record",
    "decode_record",
    "encode_record",
    "task_of_run_id",
]

#: The version of the JSON form; a reader skips records of another version. Fields may
#: be added without changing it (readers ignore fields they do not know).
FORMAT_VERSION = 1

# make_run_id's form: "<task id>@<YYYY-MM-DDTHH:MM:SS.ffffffZ>#<attempt>".
CANONICAL_RUN_ID = re.compile(
    r"(.*)@(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z#\d+", re.DOTALL
)
_DATETIME_FIELDS = ("scheduled_run_time", "started_at", "finished_at")
_TEXT_FIELDS = ("run_id", "task_id", "task_name")
_OPTIONAL_TEXT_FIELDS = ("error", "traceback", "scheduler", "executor")
_OUTCOMES = frozenset(OUTCOMES)


def apply_rule(records: Iterable[RunRecord]) -> list[RunRecord]:
    """The records a batch leaves, one per run id, in first-seen order: within a batch
    the rule of :mod:`tickwork.runs` applies as if the records were written one by one
    (a record replaces a running one; the first final one stays)."""
    latest: dict[str, RunRecord] = {}
    for record in records:
        old = latest.get(record.run_id)
        if old is None or not old.finished:
            latest[record.run_id] = record
    return list(latest.values())


class DamagedRecord(ValueError):
    """A stored record that cannot be read back; the message says why."""


def check_record(fields: dict[str, Any]) -> RunRecord:
    """A :class:`RunRecord` of ``fields`` (datetimes already parsed), after checking each
    field's type: stored data is not trusted. Raises :class:`DamagedRecord`."""
    for name in _TEXT_FIELDS:
        if not isinstance(fields.get(name), str):
            raise DamagedRecord(f"{name} is not a string")
    for name in _OPTIONAL_TEXT_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise DamagedRecord(f"{name} is not a string or null")
    outcome = fields.get("outcome")
    if outcome not in _OUTCOMES:
        raise DamagedRecord(f"unknown outcome {outcome!r}")
    for name in _DATETIME_FIELDS:
        value = fields.get(name)
        if value is None and name != "scheduled_run_time":
            continue
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise DamagedRecord(f"{name} is not a time with a zone")
    duration = fields.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise DamagedRecord("duration is not a number or null")
    attempt = fields.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise DamagedRecord("attempt is not an integer")
    return RunRecord(
        run_id=fields["run_id"],
        task_id=fields["task_id"],
        task_name=fields["task_name"],
        scheduled_run_time=fields["scheduled_run_time"],
        outcome=outcome,
        started_at=fields.get("started_at"),
        finished_at=fields.get("finished_at"),
        duration=float(duration) if duration is not None else None,
        attempt=attempt,
        error=fields.get("error"),
        traceback=fields.get("traceback"),
        scheduler=fields.get("scheduler"),
        executor=fields.get("executor"),
    )


def encode_record(record: RunRecord) -> bytes:
    """The JSON form of a record: an object with every field and ``"v"`` (the format
    version); times as ISO 8601 in UTC."""
    document: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "run_id": record.run_id,
        "task_id": record.task_id,
        "task_name": record.task_name,
        "scheduled_run_time": _iso(record.scheduled_run_time),
        "outcome": record.outcome,
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "duration": record.duration,
        "attempt": record.attempt,
        "error": record.error,
        "traceback": record.traceback,
        "scheduler": record.scheduler,
        "executor": record.executor,
    }
    # ASCII: lone surrogates in an id or a message survive as \\udxxx escapes.
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode_record(data: bytes | str) -> RunRecord:
    """The record of :func:`encode_record`'s bytes. Raises :class:`DamagedRecord`."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedRecord(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise DamagedRecord("not a JSON object")
    if document.get("v") != FORMAT_VERSION:
        raise DamagedRecord(f"unknown format version {document.get('v')!r}")
    fields = dict(document)
    for name in _DATETIME_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            try:
                fields[name] = datetime.fromisoformat(value)
            except ValueError:
                raise DamagedRecord(f"{name} {value!r} is not an ISO 8601 time") from None
    return check_record(fields)


def task_of_run_id(run_id: str) -> str | None:
    """The task id in a run id of :func:`~tickwork.runs.make_run_id`'s form, else
    ``None`` (for finding a record's place when the record itself cannot be read)."""
    found = CANONICAL_RUN_ID.fullmatch(run_id)
    return found.group(1) if found is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


class DamageLog:
    """Logs each damaged record once: a read that meets it again (every query does) stays
    quiet. ``key`` names one version of the damage (a file's path and stat, a row's id
    and contents), so damage that changes is reported again. At most ``limit`` keys
    are remembered; past that the memory starts over."""

    def __init__(self, logger: logging.Logger, where: str, limit: int = 10_000) -> None:
        self.logger = logger
        self.where = where
        self.limit = limit
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def report(self, key: Hashable, subject: str, reason: str) -> None:
        """Log that ``subject`` is damaged because of ``reason``, unless ``key`` was."""
        with self._lock:
            if key in self._seen:
                return
            if len(self._seen) >= self.limit:
                self._seen.clear()
            self._seen.add(key)
        self.logger.warning("%s: skipping damaged run record %s: %s", self.where, subject, reason)


# -- names ------------------------------------------------------------------------------
