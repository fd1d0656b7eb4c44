"""JSON: the default serializer of persistent stores.

The output is UTF-8 JSON an operator can read, and every value comes back with the
type it went in with. JSON only knows strings, numbers, booleans, null, arrays and
objects, so every other supported value is written as an object with a type tag::

    {"__tw__": "datetime", "v": "2026-03-29T02:30:00", "fold": 0, "tz": {...}}

Supported: ``str``, ``int``, ``float`` (also NaN and infinities), ``bool``, ``None``,
``list``, ``dict`` (any hashable keys), ``tuple``, ``set``, ``frozenset``, ``bytes``,
``bytearray``, ``datetime`` (naive or aware), ``date``, ``time``, ``timedelta``,
``UUID``, ``Decimal``, the time zones ``ZoneInfo`` (by key) and ``datetime.timezone``
(fixed offsets), and triggers. Exact types only: a subclass (an ``IntEnum``, a
``pandas.Timestamp``) would come back as its base class, so it is refused rather than
silently changed.

Triggers are written as ``{"__tw__": "trigger", "type": "module:Class", "state": ...}``.
Reading one imports the named class and instantiates it only if it is a
:class:`~tickwork.triggers.base.BaseTrigger` subclass: stored data can never make
tickwork call an arbitrary class.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from tickwork.exceptions import ReferenceResolutionError, SerializationError
from tickwork.serializers._checks import TRIGGER_CHECKS
from tickwork.serializers.base import (
    BaseSerializer,
    cannot_load,
    cannot_store,
    protected_record,
    short_repr,
    task_from_state,
    task_state,
)
from tickwork.tasks import Task
from tickwork.triggers.base import BaseTrigger
from tickwork.utils import obj_to_ref, ref_to_obj

__all__ = ["JSONSerializer"]

#: The key that marks a tagged value. A user dict that has this key is written in the
#: tagged ``"dict"`` form, so it can never be mistaken for a tag.
TAG = "__tw__"
#: The version of the document layout ``{"format": 1, "task": {...}}``.
FORMAT_VERSION = 1

_PLAIN_HINT = (
    "pass plain data instead (str, int, float, bool, None, lists, dicts, tuples, sets, "
    "datetimes, dates, times, timedeltas, UUIDs, Decimals, bytes), "
    "use the pickle serializer (serializer='pickle'), or use the memory store"
)


class _Unencodable(Exception):
    """Raised inside the encoder; collects the path to the value as it unwinds."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.path: list[str] = []


class JSONSerializer(BaseSerializer):
    """Tasks as tagged JSON (see the module docstring for what can be stored); see
    :class:`~tickwork.serializers.base.BaseSerializer` for the contract."""

    name = "json"

    def serialize(self, task: Task) -> bytes:
        """Return the task as UTF-8 JSON, or raise ``SerializationError``."""
        state = task_state(task)
        try:
            body = ",".join(
                [
                    f"{_quote(key)}:{_writer(type(value), _other)(value)}"
                    for key, value in state.items()
                ]
            )
        except (_Fallback, _Unencodable, RecursionError, ValueError):
            # Something the fast encoder does not take (or a cycle, which it meets as
            # deep recursion, or an int too long for str()): the careful encoder either
            # writes it or says exactly what is wrong and where.
            return _careful(task.id, state)
        try:
            return f'{{"format":{FORMAT_VERSION},"task":{{{body}}}}}'.encode()
        except UnicodeEncodeError:
            return _careful(task.id, state)  # a lone surrogate: let it word the error

    def deserialize(self, data: bytes) -> Task:
        """Return the task the JSON document holds, or raise ``SerializationError``."""
        try:
            return _quick_load(data)
        except Exception:
            # Something the quick decoder does not take, or broken data: the careful
            # decoder reads it again from the start and either returns the task or words
            # the error (outside this handler, so its error is not chained to ours).
            # Stored data is not broken often enough for the second parse to matter.
            pass
        return _careful_load(data)


def _careful_load(data: bytes) -> Task:
    """Decode ``data`` step by step; raise ``SerializationError`` saying what is wrong."""
    if not isinstance(data, bytes | bytearray | str):
        raise cannot_load(None, f"expected bytes, got {type(data).__name__}")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        reason = protected_record(data) or f"the data is not valid JSON ({exc})"
        raise cannot_load(None, reason) from None
    except RecursionError:
        raise cannot_load(None, "the JSON document is nested too deeply") from None
    raw = document.get("task") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise cannot_load(None, "the JSON document has no 'task' object")
    task_id = raw.get("id")
    if document.get("format") != FORMAT_VERSION:
        raise cannot_load(
            task_id,
            f"it was written in JSON format {document.get('format')!r}, this tickwork "
            f"reads format {FORMAT_VERSION}; upgrade tickwork",
        )
    try:
        state = {key: _decode(value) for key, value in raw.items()}
    except SerializationError as exc:
        raise cannot_load(task_id, str(exc)) from None
    except ReferenceResolutionError as exc:
        raise cannot_load(task_id, f"its trigger class no longer imports ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        # ArithmeticError: a decimal that does not parse, a timedelta out of range.
        raise cannot_load(task_id, f"malformed value ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise cannot_load(task_id, "a value is nested too deeply") from None
    return task_from_state(state)


# -- encoding --------------------------------------------------------------------------------
#
# Two encoders write the same bytes. The fast one (``_text``) is what every task goes
# through first: it writes JSON text directly, dispatching on the exact type, with no
# per-value objects, no path or cycle bookkeeping, and cached text for what tasks share
# (time zones, trigger class references). Building the tagged structure and handing it to
# ``json.dumps`` costs about twice as much: the C encoder is not that fast on many small
# objects. When the fast encoder meets anything it does not handle it gives up, and the
# careful one (``_Encoder`` + ``json.dumps``) starts over: it tracks where each value sits
# and which containers are on the current path, so an unencodable value or a cycle gets
# a precise message. tests/serializers check that both write the same text.

#: One encoder for every document: ``json.dumps`` with options builds a new one per call.
_DUMPS = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
#: A JSON string literal, exactly as ``_DUMPS`` writes it (``ensure_ascii=False``).
_quote: Any = json.encoder.encode_basestring


def _careful(task_id: str, state: dict[str, Any]) -> bytes:
    """Encode ``state`` with the careful encoder; raise ``SerializationError`` naming the
    field and the path of the value that cannot be written."""
    encoded: dict[str, Any] = {}
    for key, value in state.items():
        try:
            encoded[key] = _Encoder().encode(value)
        except _Unencodable as exc:
            where = key + "".join(reversed(exc.path))
            raise cannot_store(
                task_id,
                f"{where} = {short_repr(exc.value)}",
                f"cannot be written as JSON ({exc.reason})",
                _PLAIN_HINT,
            ) from None
        except RecursionError:
            raise cannot_store(
                task_id, key, "is nested too deeply to be written as JSON", _PLAIN_HINT
            ) from None
    try:
        text = _DUMPS({"format": FORMAT_VERSION, "task": encoded})
    except ValueError as exc:
        # An int too long to convert to text (sys.set_int_max_str_digits): it could
        # not be read back either.
        raise cannot_store(
            task_id, "a value", f"cannot be written as JSON ({exc})", _PLAIN_HINT
        ) from None
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise cannot_store(
            task_id, "a string", f"cannot be written as UTF-8 ({exc})", _PLAIN_HINT
        ) from None


class _Fallback(Exception):
    """Raised by the fast encoder for a value it leaves to the careful one."""


def _text(value: Any) -> str:
    """The JSON text of ``value``, as the careful encoder would write it.

    Containers inline this call (``_writer(type(item), _other)(item)``): strings, ints,
    booleans and None then go straight to a C function, without a Python frame.
    """
    return _writer(type(value), _other)(value)  # type: ignore[no-any-return]


def _other(value: Any) -> str:
    """The writer of every type not in ``_WRITERS``: triggers, or give up."""
    if isinstance(value, BaseTrigger):
        return _text_trigger(value)
    raise _Fallback


def _text_float(value: float) -> str:
    # repr() is what the json module writes; NaN and infinities are tagged.
    return repr(value) if math.isfinite(value) else f'{{"{TAG}":"float","v":"{value!r}"}}'


def _text_items(values: Iterable[Any]) -> str:
    return ",".join([_writer(type(item), _other)(item) for item in values])


def _text_dict(value: dict[Any, Any]) -> str:
    if TAG not in value:
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                break
            parts.append(f"{_quote(key)}:{_writer(type(item), _other)(item)}")
        else:
            return "{" + ",".join(parts) + "}"
    pairs = ",".join([f"[{_text(key)},{_text(item)}]" for key, item in value.items()])
    return f'{{"{TAG}":"dict","items":[{pairs}]}}'


#: The text of each time zone in use, by ``id()``; the entry keeps the zone alive, so the
#: id cannot be reused for another zone while the entry exists. Few zones are ever in
#: use; the bound only keeps a program that makes zones on the fly from growing it
#: without end (past it, zones are encoded each time).
_ZONES: dict[int, tuple[tzinfo, str]] = {}
_ZONES_MAX = 256


def _text_zone(zone: tzinfo | None) -> str:
    if zone is None:
        return "null"
    found = _ZONES.get(id(zone))
    if found is not None and found[0] is zone:
        return found[1]
    if type(zone) is not ZoneInfo and type(zone) is not timezone:
        raise _Fallback
    text = _DUMPS(_encode_zone(zone))
    if len(_ZONES) < _ZONES_MAX:
        _ZONES[id(zone)] = (zone, text)
    return text


def _wall(value: datetime | time) -> str:
    """``value.replace(tzinfo=None, fold=0).isoformat()``, without building the copy.

    ``isoformat()`` writes the wall time (fixed width: 4-digit years, microseconds only
    when not zero; fold never shows), then the UTC offset if any; cut the offset off.
    """
    text = value.isoformat()
    if value.tzinfo is None:
        return text
    return text[
        : (_DATETIME_WIDTH if type(value) is datetime else _TIME_WIDTH)[value.microsecond != 0]
    ]


#: isoformat() widths without and with microseconds: "2026-01-01T00:00:00", "00:00:00".
_DATETIME_WIDTH = (19, 26)
_TIME_WIDTH = (8, 15)


def _text_datetime(value: datetime) -> str:
    zone = _text_zone(value.tzinfo)  # first: an unsupported zone's utcoffset() may fail
    # The wall time is digits and "-:T." only: nothing to escape.
    return f'{{"{TAG}":"datetime","v":"{_wall(value)}","fold":{value.fold},"tz":{zone}}}'


def _text_time(value: time) -> str:
    zone = _text_zone(value.tzinfo)
    return f'{{"{TAG}":"time","v":"{_wall(value)}","fold":{value.fold},"tz":{zone}}}'


#: The text before a trigger's state, per trigger class. Resolving the class reference
#: checks that it imports back to the class, which costs more than the rest of a small
#: trigger's encoding; the answer cannot change while the class object lives (imports
#: are cached as well).
_TRIGGER_HEADS: dict[type, str] = {}


def _text_trigger(trigger: BaseTrigger) -> str:
    cls = type(trigger)
    head = _TRIGGER_HEADS.get(cls)
    if head is None:
        try:
            ref = obj_to_ref(cls)
        except ReferenceResolutionError:
            raise _Fallback from None
        head = _TRIGGER_HEADS[cls] = f'{{"{TAG}":"trigger","type":{_quote(ref)},"state":'
        # Later triggers of this class skip the isinstance() check in _other.
        _WRITERS[cls] = _text_trigger
    return f"{head}{_text_dict(trigger.__getstate__())}}}"


def _scalar_text(kind: type) -> Any:
    """The careful encoding of a scalar type, as text (for types with nothing to cache)."""
    encode = _SCALARS[kind]
    return lambda value: _DUMPS(encode(value))


#: The writer of each exact type. A subclass (an IntEnum, a dict subclass) is not here:
#: it goes to ``_other``, which leaves it to the careful encoder, which refuses it.
_WRITERS: dict[type, Any] = {
    str: _quote,
    int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): {None: "null"}.__getitem__,
    float: _text_float,
    dict: _text_dict,
    list: lambda v: f"[{_text_items(v)}]",
    tuple: lambda v: f'{{"{TAG}":"tuple","items":[{_text_items(v)}]}}',
    set: lambda v: f'{{"{TAG}":"set","items":[{_text_items(v)}]}}',
    frozenset: lambda v: f'{{"{TAG}":"frozenset","items":[{_text_items(v)}]}}',
    datetime: _text_datetime,
    time: _text_time,
    timedelta: lambda v: f'{{"{TAG}":"timedelta","v":[{v.days},{v.seconds},{v.microseconds}]}}',
    ZoneInfo: _text_zone,
    timezone: _text_zone,
}


_writer = _WRITERS.get


class _Encoder:
    """Walks one value; remembers the containers on the current path to refuse cycles."""

    def __init__(self) -> None:
        self._active: set[int] = set()

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind is str or kind is int or kind is bool:
            return value
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
        if kind in _CONTAINERS:
            return self._container(value)
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            return scalar(value)
        if isinstance(value, BaseTrigger):
            return self._trigger(value)
        if isinstance(value, tzinfo):
            raise _Unencodable(
                value, "only ZoneInfo zones with a key and datetime.timezone offsets are supported"
            )
        raise _Unencodable(value, f"values of type {kind.__module__}.{kind.__qualname__}")

    def _container(self, value: Any) -> Any:
        if id(value) in self._active:
            raise _Unencodable(value, "it contains itself")
        self._active.add(id(value))
        try:
            if type(value) is dict:
                return self._dict(value)
            items = [self._item(item, f"[{index}]") for index, item in enumerate(value)]
            if type(value) is list:
                return items
            return {TAG: type(value).__name__, "items": items}
        finally:
            self._active.discard(id(value))

    def _dict(self, value: dict[Any, Any]) -> Any:
        if TAG not in value and all(type(key) is str for key in value):
            return {key: self._item(item, f"[{key!r}]") for key, item in value.items()}
        pairs = [
            [self._item(key, f" key {key!r}"), self._item(item, f"[{key!r}]")]
            for key, item in value.items()
        ]
        return {TAG: "dict", "items": pairs}

    def _item(self, value: Any, step: str) -> Any:
        try:
            return self.encode(value)
        except _Unencodable as exc:
            exc.path.append(step)
            raise

    def _trigger(self, trigger: BaseTrigger) -> Any:
        try:
            ref = obj_to_ref(type(trigger))
        except ReferenceResolutionError as exc:
            raise _Unencodable(trigger, f"its class has no importable name ({exc})") from None
        return {TAG: "trigger", "type": ref, "state": self._item(trigger.__getstate__(), ".state")}


def _encode_zone(zone: tzinfo | None) -> Any:
    if zone is None:
        return None
    if type(zone) is ZoneInfo:
        if zone.key is None:
            raise _Unencodable(zone, "a ZoneInfo read from a file has no key to store")
        return {TAG: "zoneinfo", "key": zone.key}
    if type(zone) is timezone:
        offset = zone.utcoffset(None)
        # A name is kept only when it was given: timezone(offset) derives "UTC+01:00".
        name = zone.tzname(None)
        named = name != timezone(offset).tzname(None)
        return {TAG: "timezone", "offset": _encode_delta(offset), "name": name if named else None}
    raise _Unencodable(
        zone, "only ZoneInfo zones with a key and datetime.timezone offsets are supported"
    )


def _encode_delta(value: timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _encode_datetime(value: datetime) -> Any:
    wall = value.replace(tzinfo=None, fold=0).isoformat()
    return {TAG: "datetime", "v": wall, "fold": value.fold, "tz": _encode_zone(value.tzinfo)}


def _encode_time(value: time) -> Any:
    wall = value.replace(tzinfo=None, fold=0).isoformat()
    return {TAG: "time", "v": wall, "fold": value.fold, "tz": _encode_zone(value.tzinfo)}


_CONTAINERS = {list, dict, tuple, set, frozenset}

_SCALARS: dict[type, Any] = {
    datetime: _encode_datetime,
    date: lambda v: {TAG: "date", "v": v.isoformat()},
    time: _encode_time,
    timedelta: lambda v: {TAG: "timedelta", "v": _encode_delta(v)},
    UUID: lambda v: {TAG: "uuid", "v": str(v)},
    Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {TAG: "bytearray", "v": base64.b64encode(v).decode("ascii")},
    ZoneInfo: _encode_zone,
    timezone: _encode_zone,
}

# Rarer scalars: the careful encoding, turned into text.
for _kind in (date, UUID, Decimal, bytes, bytearray):
    _WRITERS[_kind] = _scalar_text(_kind)


# -- decoding --------------------------------------------------------------------------------


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {key: _decode(item) for key, item in value.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise SerializationError(f"unknown type tag {tag!r}")
    return decoder(value)


def _decode_zone(value: Any) -> tzinfo | None:
    if value is None:
        return None
    zone = _decode(value)
    if not isinstance(zone, tzinfo):
        raise SerializationError(f"expected a time zone, found {value!r}")
    return zone


def _decode_delta(parts: list[int]) -> timedelta:
    days, seconds, microseconds = parts
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_timezone(value: dict[str, Any]) -> timezone:
    offset = _decode_delta(value["offset"])
    name = value.get("name")
    return timezone(offset) if name is None else timezone(offset, name)


def _decode_datetime(value: dict[str, Any]) -> datetime:
    wall = datetime.fromisoformat(value["v"])
    return wall.replace(tzinfo=_decode_zone(value["tz"]), fold=value["fold"])


def _decode_time(value: dict[str, Any]) -> time:
    wall = time.fromisoformat(value["v"])
    return wall.replace(tzinfo=_decode_zone(value["tz"]), fold=value["fold"])


def _decode_trigger(value: dict[str, Any]) -> BaseTrigger:
    ref = value["type"]
    cls = ref_to_obj(ref)
    # The safety rule of this format: only trigger classes are ever instantiated.
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
        raise SerializationError(f"{ref!r} is not a trigger class; refusing to instantiate it")
    trigger = cls.__new__(cls)
    trigger.__setstate__(_decode(value["state"]))
    return trigger


def _decode_dict(value: dict[str, Any]) -> dict[Any, Any]:
    return {_decode(key): _decode(item) for key, item in value["items"]}


_DECODERS: dict[str, Any] = {
    "float": lambda v: float(v["v"]),
    "tuple": lambda v: tuple(_decode(v["items"])),
    "set": lambda v: set(_decode(v["items"])),
    "frozenset": lambda v: frozenset(_decode(v["items"])),
    "dict": _decode_dict,
    "datetime": _decode_datetime,
    "date": lambda v: date.fromisoformat(v["v"]),
    "time": _decode_time,
    "timedelta": lambda v: _decode_delta(v["v"]),
    "uuid": lambda v: UUID(v["v"]),
    "decimal": lambda v: Decimal(v["v"]),
    "bytes": lambda v: base64.b64decode(v["v"]),
    "bytearray": lambda v: bytearray(base64.b64decode(v["v"])),
    "zoneinfo": lambda v: ZoneInfo(v["key"]),
    "timezone": _decode_timezone,
    "trigger": _decode_trigger,
}


# -- quick decoding --------------------------------------------------------------------------
#
# The careful decoder above parses the whole document into plain JSON values, then walks
# every value again in Python (about 30 calls for a small interval task) before building
# the task. The quick one lets the C parser call ``_quick_hook`` once per JSON object, as
# it finishes it, so strings, numbers and lists cost no Python call at all, and it parses
# only the task object (skipping ``json.loads``' encoding detection and document checks).
#
# It must give exactly what the careful decoder gives, or give up: any exception makes
# ``deserialize`` start over with the careful decoder, which returns the task or words the
# error. So the quick path only has to be right where it succeeds. The one difference
# that needs care is order: the hook sees an object's members already decoded, while the
# careful decoders read some members raw (``"v"`` of a datetime, ``"items"`` pairs of a
# dict, a trigger's ``"type"``). A raw member that holds an object decodes differently, so
# the quick decoders accept only the member types the encoder writes (a str, a list of
# ints...), none of which can hold an object; anything else gives up.

#: How every document this encoder writes begins, up to the task object: the quick path
#: knows the format is 1 and the document has these two members only (it checks that the
#: task object ends the document).
_TASK_AT = f'{{"format":{FORMAT_VERSION},"task":'.encode()
_TASK_START = len(_TASK_AT)


class _GiveUp(Exception):
    """Raised by the quick decoder for data it leaves to the careful one."""


def _quick_load(data: bytes) -> Task:
    """Decode a document as the encoder writes it, or raise (anything) to give up."""
    if type(data) is not bytes or not data.startswith(_TASK_AT):
        raise _GiveUp  # another format version, a BOM, spaces, a str...: unusual
    # Strict UTF-8: json.loads would accept encoded lone surrogates; the careful path does.
    text = data.decode()
    state, end = _scan(text, _TASK_START)
    if type(state) is not dict or text[end:] != "}":
        raise _GiveUp  # not an object, or anything but the document's closing brace after it
    task: Task = Task.__new__(Task)
    task.__setstate__(state)
    # The trigger's check of the careful path (task_from_state's), so both refuse the
    # same records; called without its wrapper, which only words the error: a refusal
    # gives up, and the careful decoder words it.
    trigger = task.trigger
    check = TRIGGER_CHECKS.get(type(trigger))
    if check is not None:
        check(trigger, task.next_run_time)
    return task


def _quick_hook(value: dict[str, Any]) -> Any:
    """What an object of the document stands for; its members are decoded already."""
    tag = value.get(TAG)
    if tag is None:
        return value  # a plain dict (the careful decoder also keeps a "__tw__": null)
    # The tags every task has several of are handled here, without a second call.
    if tag == "datetime":
        wall = value["v"]
        fold = value["fold"]
        zone = value["tz"]  # decoded already: None or a zone
        if (
            type(wall) is str
            and type(fold) is int
            and fold == 0
            and (zone is None or type(zone) is ZoneInfo or type(zone) is timezone)
        ):
            parsed = _from_iso(wall)
            # What parsed.replace(tzinfo=zone, fold=0) returns (fromisoformat gives fold
            # 0, and the time part drops an offset the text might carry), in a quarter of
            # the time. combine() takes the datetime as its date.
            return _combine(parsed, _time_part(parsed), zone)
    elif tag == "zoneinfo":
        key = value["key"]
        if type(key) is not str:
            raise _GiveUp
        return ZoneInfo(key)  # cached by ZoneInfo itself: the same object for the same key
    elif tag == "timedelta":
        return _quick_delta(value["v"])
    # The rest, and a datetime with fold 1: an unknown tag is a KeyError, an unhashable
    # one a TypeError; both give up.
    return _QUICK[tag](value)


# Bound once: looking the methods up on the class would cost on every datetime.
_from_iso = datetime.fromisoformat
_combine = datetime.combine
_time_part = datetime.time

# The decoders below do their checks inline rather than through shared helpers: a Python
# call costs about as much as the work here, and a task has about a dozen tagged values.


def _quick_wall_clock(kind: Any) -> Any:
    """The decoder of a datetime (fold 1: fold 0 is decoded in ``_quick_hook``) or a time:
    ISO text, a zone and a fold, handed to ``kind``."""

    def decode(value: dict[str, Any]) -> Any:
        wall = value["v"]
        zone = value["tz"]
        fold = value["fold"]
        if (
            type(wall) is not str
            or type(fold) is not int
            or (zone is not None and type(zone) is not ZoneInfo and type(zone) is not timezone)
        ):
            raise _GiveUp
        return kind.fromisoformat(wall).replace(tzinfo=zone, fold=fold)

    return decode


#: Decoded timedeltas by (days, seconds, microseconds): building one costs about 0.4 µs,
#: and tasks share a few (intervals, jitters). Timedeltas are immutable, so sharing one
#: object is safe. Bounded like ``_ZONES``: past the bound, new ones are built each time.
_DELTAS: dict[tuple[int, int, int], timedelta] = {}
_DELTAS_MAX = 1024


def _quick_delta(parts: Any) -> timedelta:
    # Exactly three ints, as written (a list element written as an object is decoded by
    # now, and the careful decoder would have read it raw; a bool or float would share
    # a cache key with an int).
    if type(parts) is not list or len(parts) != 3:
        raise _GiveUp
    days, seconds, microseconds = parts
    if type(days) is not int or type(seconds) is not int or type(microseconds) is not int:
        raise _GiveUp
    key = (days, seconds, microseconds)
    delta = _DELTAS.get(key)
    if delta is None:
        delta = timedelta(days, seconds, microseconds)
        if len(_DELTAS) < _DELTAS_MAX:
            _DELTAS[key] = delta
    return delta


def _quick_timezone(value: dict[str, Any]) -> timezone:
    offset = _quick_delta(value["offset"])
    name = value.get("name")
    if name is None:
        return timezone(offset)
    if type(name) is not str:
        raise _GiveUp
    return timezone(offset, name)


def _quick_text(kind: Any) -> Any:
    """The decoder of a tag whose ``"v"`` is a string handed to ``kind``."""

    def decode(value: dict[str, Any]) -> Any:
        text = value["v"]
        if type(text) is not str:
            raise _GiveUp
        return kind(text)

    return decode


def _quick_items(kind: Any) -> Any:
    """The decoder of a tag whose ``"items"`` list (decoded already) is handed to ``kind``."""

    def decode(value: dict[str, Any]) -> Any:
        items = value["items"]
        if type(items) is not list:
            raise _GiveUp
        return kind(items)

    return decode


def _quick_dict(value: dict[str, Any]) -> dict[Any, Any]:
    pairs = value["items"]
    if type(pairs) is not list:
        raise _GiveUp
    for pair in pairs:
        # A pair written as an object would have been decoded into something else.
        if type(pair) is not list or len(pair) != 2:
            raise _GiveUp
    result = dict(pairs)  # keys and values are decoded already
    if "fn" in result:
        # The careful decoder never reads the task object itself as a tagged value; the
        # hook cannot tell it from a nested dict. So a tagged dict that could pass for a
        # task state ("fn" is required) is left to the careful decoder.
        raise _GiveUp
    return result


#: Trigger classes already checked to be BaseTrigger subclasses. Keyed by the class
#: object (what the reference resolves to now), not by the reference: a reference that
#: resolves to another object later is checked again. A class never stops being a
#: subclass, so entries never go stale.
_TRIGGER_CLASSES: set[type] = set()


def _quick_trigger(value: dict[str, Any]) -> BaseTrigger:
    ref = value["type"]
    if type(ref) is not str:
        raise _GiveUp
    # ref_to_obj caches successful imports (an lru_cache); a failure raises and is not
    # cached: the careful decoder then names the reference in its error.
    cls = ref_to_obj(ref)
    if cls not in _TRIGGER_CLASSES:
        if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
            raise _GiveUp  # the careful decoder refuses it, with the message
        _TRIGGER_CLASSES.add(cls)
    trigger: BaseTrigger = cls.__new__(cls)
    trigger.__setstate__(value["state"])
    return trigger


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _b64_array(text: str) -> bytearray:
    return bytearray(base64.b64decode(text))


_QUICK: dict[str, Any] = {
    "float": _quick_text(float),
    "tuple": _quick_items(tuple),
    "set": _quick_items(set),
    "frozenset": _quick_items(frozenset),
    "dict": _quick_dict,
    "datetime": _quick_wall_clock(datetime),
    "date": _quick_text(date.fromisoformat),
    "time": _quick_wall_clock(time),
    "uuid": _quick_text(UUID),
    "decimal": _quick_text(Decimal),
    "bytes": _quick_text(_b64),
    "bytearray": _quick_text(_b64_array),
    "timezone": _quick_timezone,
    "trigger": _quick_trigger,
}

#: The C scanner with the hook: ``_scan(text, index)`` returns ``(value, end)``. One for
#: all calls: its only state is a cache of key strings, which it clears after each call.
_scan: Any = json.JSONDecoder(object_hook=_quick_hook).scan_once  # type: ignore[attr-defined]
