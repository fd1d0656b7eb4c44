"""Helpers users need at the edges: references to callables, time zones, lifecycle wrappers."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickwork.exceptions import (
    ConfigurationError,
    InvalidTaskError,
    ReferenceResolutionError,
)
from tickwork.security.modules import active_policy

__all__ = [
    "CallShape",
    "ClassSignature",
    "call_shape",
    "call_signature",
    "check_callable_args",
    "from_pytz",
    "from_pytz_datetime",
    "is_pytz",
    "local_timezone",
    "make_async_function",
    "make_function",
    "obj_to_ref",
    "ref_to_obj",
    "to_datetime",
    "to_timedelta",
    "to_timezone",
]


# ---------------------------------------------------------------------------------------
# References: "package.module:qualname"


def obj_to_ref(obj: Any) -> str:
    """Return the ``"module:qualname"`` reference that :func:`ref_to_obj` turns back into
    ``obj``.

    Raises :class:`~tickwork.exceptions.ReferenceResolutionError` (an :class:`ImportError`,
    like every failure to resolve a reference) for objects that have no importable name:
    lambdas, nested functions, bound methods of instances, partials, and objects whose
    name imports to something else.
    """
    if isinstance(obj, functools.partial):
        raise ReferenceResolutionError(repr(obj), "functools.partial objects have no reference")
    owner = getattr(obj, "__self__", None)
    if owner is not None and not inspect.isclass(owner) and not inspect.ismodule(owner):
        raise ReferenceResolutionError(
            repr(obj), "bound methods of instances have no reference; use a function instead"
        )
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module is None or qualname is None:
        raise ReferenceResolutionError(repr(obj), "it has no __module__/__qualname__")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ReferenceResolutionError(
            f"{module}:{qualname}", "lambdas and nested functions cannot be imported by name"
        )
    ref = f"{module}:{qualname}"
    try:
        found = ref_to_obj(ref)
    except ReferenceResolutionError as exc:
        raise ReferenceResolutionError(ref, f"it does not import back ({exc})") from None
    if found is not obj and getattr(found, "__func__", found) is not getattr(obj, "__func__", obj):
        raise ReferenceResolutionError(ref, "it imports to a different object")
    return ref


def ref_to_obj(ref: str) -> Any:
    """Import and return the object a ``"package.module:qualname"`` reference names.

    While a store loads a record under ``allowed_modules`` (see
    :mod:`tickwork.security.modules`), a module outside the list is refused with
    ``ModuleNotAllowedError`` before it is imported (and before the cache is asked: an
    object imported earlier for a trusted reason is no more allowed now).
    """
    policy = active_policy()
    if policy is None:
        return _resolve(ref)
    if isinstance(ref, str):
        policy.check(ref)
    obj = _resolve(ref)
    policy.check_resolved(ref, obj)
    return obj


@functools.lru_cache(maxsize=4096)
def _resolve(ref: str) -> Any:
    if not isinstance(ref, str):
        raise ReferenceResolutionError(repr(ref), "a reference must be a string")
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ReferenceResolutionError(ref, "expected the form 'package.module:qualname'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ReferenceResolutionError(
            ref, f"module {module_name!r} cannot be imported ({exc})"
        ) from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ReferenceResolutionError(ref, f"{part!r} not found in {module_name}") from None
    return obj


# (Tests and reloading programs clear the cache through the public name.)
ref_to_obj.cache_clear = _resolve.cache_clear  # type: ignore[attr-defined]


class CallShape:
    """A callable's parameters as binding needs them, precomputed from its signature.

    :meth:`accepts` answers "does ``fn(*args, **kwargs)`` certainly bind?" in a fraction of
    a microsecond; ``inspect.signature`` + ``Signature.bind`` take ~50 µs, which was most
    of the cost of ``add_task``. A ``False`` only means "not certain": the caller then
    asks ``Signature.bind``, which decides and words the error exactly as before.
    """

    __slots__ = (
        "accepts_nothing",
        "keywords",
        "positional",
        "required_keywords",
        "required_positional",
        "var_keyword",
        "var_positional",
    )

    def __init__(self, signature: inspect.Signature) -> None:
        positional: list[tuple[str, bool, bool]] = []  # (name, has default, positional-only)
        keywords: set[str] = set()
        required_keywords: list[str] = []
        self.var_positional = self.var_keyword = False
        for param in signature.parameters.values():
            has_default = param.default is not param.empty
            if param.kind is param.POSITIONAL_ONLY:
                positional.append((param.name, has_default, True))
            elif param.kind is param.POSITIONAL_OR_KEYWORD:
                positional.append((param.name, has_default, False))
                keywords.add(param.name)
            elif param.kind is param.KEYWORD_ONLY:
                keywords.add(param.name)
                if not has_default:
                    required_keywords.append(param.name)
            elif param.kind is param.VAR_POSITIONAL:
                self.var_positional = True
            else:
                self.var_keyword = True
        self.positional = tuple(positional)
        # (index, name, positional-only) of the positional parameters without a default.
        self.required_positional = tuple(
            (index, name, positional_only)
            for index, (name, has_default, positional_only) in enumerate(positional)
            if not has_default
        )
        self.keywords = frozenset(keywords)
        self.required_keywords = tuple(required_keywords)
        #: ``accepts((), {})``, asked for most tasks (those without arguments).
        self.accepts_nothing = self.accepts((), {})

    def accepts(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        """True when ``fn(*args, **kwargs)`` certainly binds (see the class docstring)."""
        given = len(args)
        positional = self.positional
        if given > len(positional) and not self.var_positional:
            return False
        for name in kwargs:
            if name in self.keywords:
                if given and any(p[0] == name for p in positional[:given]):
                    return False  # "multiple values for argument"
            elif not self.var_keyword:
                return False
        for index, name, positional_only in self.required_positional:
            if index >= given and (positional_only or name not in kwargs):
                return False
        required = self.required_keywords
        return not required or all(name in kwargs for name in required)


#: Shapes of plain functions and classes by ``id()``, with a weak reference to the object
#: (an entry leaves with its object) and the attributes the shape was computed from (a
#: function whose code or defaults are replaced gets a new shape). A plain dict rather
#: than a WeakKeyDictionary, whose ``get`` is a Python-level call on every add_task.
_SHAPES: dict[int, tuple[weakref.ref[Any], tuple[Any, ...], CallShape]] = {}


def _forget_shape(ident: int, ref: weakref.ref[Any]) -> None:
    entry = _SHAPES.get(ident)
    if entry is not None and entry[0] is ref:
        del _SHAPES[ident]


def _shape_key(obj: Any) -> tuple[Any, ...] | None:
    if type(obj) is types.FunctionType:
        extra = obj.__dict__
        return (
            obj.__code__,
            obj.__defaults__,
            obj.__kwdefaults__,
            extra.get("__wrapped__"),
            extra.get("__signature__"),
        )
    if isinstance(obj, type):
        cls: Any = obj  # (mypy frowns on reading __init__ off a type)
        return (
            cls.__init__,
            cls.__new__,
            type(cls).__call__,
            cls.__dict__.get("__signature__"),
            None,
        )
    return None


def call_shape(obj: Any) -> CallShape | None:
    """The cached :class:`CallShape` of a plain function or a class, or ``None`` for other
    callables and for those whose signature cannot be read."""
    ident = id(obj)
    cached = _SHAPES.get(ident)
    if cached is not None and cached[0]() is obj:
        # Compared by identity (spelt out, without building the key: this runs on every
        # add_task), since defaults may hold objects whose == is odd (arrays).
        old = cached[1]
        if type(obj) is types.FunctionType:
            extra = obj.__dict__
            if (
                old[0] is obj.__code__
                and old[1] is obj.__defaults__
                and old[2] is obj.__kwdefaults__
                and old[3] is extra.get("__wrapped__")
                and old[4] is extra.get("__signature__")
            ):
                return cached[2]
        elif old == _shape_key(obj):
            return cached[2]
    key = _shape_key(obj)
    if key is None:
        return None
    try:
        shape = CallShape(call_signature(obj))
    except (TypeError, ValueError):
        return None
    _SHAPES[ident] = (weakref.ref(obj, functools.partial(_forget_shape, ident)), key, shape)
    return shape


class ClassSignature:
    """A class's ``__signature__``, computed once (``__signature__ = ClassSignature()`` in
    the class body).

    ``inspect.signature(cls)`` returns a class's ``__signature__`` when it has one, instead
    of rebuilding it from ``__init__`` (~25 µs, on every ``add_task(fn, "interval", ...)``).
    Subclasses get ``None``, which makes inspect compute theirs as usual, so a subclass with
    another ``__init__`` is never described by its parent's signature.
    """

    def __init__(self) -> None:
        self._owner: type | None = None
        self._signature: inspect.Signature | None = None
        self._computing = False

    def __set_name__(self, owner: type, name: str) -> None:
        self._owner = owner

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature | None:
        if owner is None or owner is not self._owner or self._computing:
            return None
        if self._signature is None:
            self._computing = True  # inspect reads __signature__ again while computing it
            try:
                self._signature = inspect.signature(owner)
            finally:
                self._computing = False
        return self._signature


def call_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """The signature ``fn`` is called with, looking through decorators only where they
    hand their arguments on unchanged.

    ``functools.wraps`` sets ``__wrapped__``, and ``inspect.signature`` follows it to the
    innermost function. That is right for a wrapper that passes its arguments through, and
    wrong for a decorator that changes them: ``def wrapper(extra, *args, **kwargs)`` adds a
    parameter, ``def wrapper(y): return fn(1, y)`` supplies one. So a wrapper's *own*
    signature is used, and ``__wrapped__`` is followed only from a wrapper that takes
    nothing but ``*args`` and/or ``**kwargs``: nothing there says what it accepts, and the
    usual such wrapper (logging, retrying, timing) forwards everything, so checking the
    wrapped function's signature catches wrong arguments at ``add_task`` rather than at
    the first run. A decorator that supplies arguments through a bare ``(*args,
    **kwargs)`` wrapper tells so by setting ``wrapper.__signature__``, which is always
    taken as it is (by ``inspect`` itself). Classes and other callables: as ``inspect``
    reads them.
    """
    return _call_signature(fn)[0]


def _passes_through(signature: inspect.Signature) -> bool:
    """True for ``(*args)``, ``(**kwargs)`` and ``(*args, **kwargs)``."""
    parameters = signature.parameters.values()
    return bool(parameters) and all(
        p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD for p in parameters
    )


def _call_signature(fn: Callable[..., Any]) -> tuple[inspect.Signature, Any]:
    """:func:`call_signature`, and the wrapped function it was read from (``None`` when
    it is ``fn``'s own), for the error message."""
    if isinstance(fn, types.MethodType) and type(fn.__func__) is types.FunctionType:
        # A bound method of a decorated function: the function's signature, less the
        # parameter the instance (or class) fills, as inspect does for methods.
        signature, wrapped = _call_signature(fn.__func__)
        parameters = list(signature.parameters.values())
        if parameters and parameters[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            signature = signature.replace(parameters=parameters[1:])
        return signature, wrapped
    if type(fn) is not types.FunctionType or "__wrapped__" not in fn.__dict__:
        return inspect.signature(fn), None
    signature = inspect.signature(fn, follow_wrapped=False)
    source: Any = None
    current: Any = fn
    while _passes_through(signature):
        wrapped = getattr(current, "__wrapped__", None)
        if wrapped is None:
            break
        current = source = wrapped
        signature = inspect.signature(current, follow_wrapped=False)
    return signature, source


def check_callable_args(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    """Raise :class:`InvalidTaskError` if ``fn(*args, **kwargs)`` would fail to bind.

    The signature is :func:`call_signature`'s (decorators are looked through only where
    they pass everything on). Callables whose signature cannot be read (some builtins)
    are accepted as they are.
    """
    shape = call_shape(fn)
    if shape is not None and (
        shape.accepts_nothing if not args and not kwargs else shape.accepts(args, kwargs)
    ):
        return
    try:
        signature, source = _call_signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        through = ""
        if source is not None:
            through = (
                f" ({name} is a wrapper taking only *args/**kwargs, so the signature of the "
                "function it wraps was checked; a decorator that supplies arguments itself "
                "should set its wrapper's __signature__)"
            )
        raise InvalidTaskError(
            f"{name}{signature} cannot be called with args={tuple(args)!r} "
            f"kwargs={dict(kwargs)!r}: {exc}{through}"
        ) from None


# ---------------------------------------------------------------------------------------
# Time zones and datetimes


def local_timezone() -> tzinfo:
    """Return the machine's local time zone (an IANA zone where tzlocal can find one)."""
    import tzlocal

    return tzlocal.get_localzone()


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {name!r}") from None


def to_timezone(value: str | tzinfo | None) -> tzinfo | None:
    """Turn an IANA zone name or tzinfo into a tzinfo; ``None`` stays ``None``.

    A pytz zone becomes its :func:`from_pytz` equivalent: tickwork does datetime
    arithmetic the standard way, which pytz zones get wrong without ``localize()``.
    """
    if value is None or type(value) is ZoneInfo or type(value) is timezone:
        return value  # (the common cases first: every trigger construction asks)
    if isinstance(value, tzinfo):
        return from_pytz(value) if is_pytz(value) else value
    if isinstance(value, str):
        return _zone(value)
    raise ConfigurationError(f"a time zone must be a name or a tzinfo, got {value!r}")


def is_pytz(zone: tzinfo | None) -> bool:
    """True for a pytz zone (pytz itself is not a dependency: a pytz zone can only exist
    once the user's code has imported it)."""
    module = sys.modules.get("pytz.tzinfo")
    return module is not None and isinstance(zone, module.BaseTzInfo)


def from_pytz(zone: tzinfo) -> tzinfo:
    """The standard-library zone equivalent to a pytz zone: ``datetime.UTC`` for pytz's
    UTC, a ``datetime.timezone`` for ``pytz.FixedOffset``, ``ZoneInfo(zone.zone)``
    otherwise. Other zones are returned as they are.

    pytz zones only give the right offset through ``zone.localize(naive)``; used as a
    plain tzinfo (``datetime(..., tzinfo=zone)``, ``dt.replace(tzinfo=zone)``, wall-clock
    arithmetic) they give the zone's first historical offset, such as Berlin's +00:53
    local mean time, which would fire a daily 08:00 New York job at 08:56.
    """
    if not is_pytz(zone):
        return zone
    name = getattr(zone, "zone", None)
    if name is None:  # pytz.FixedOffset(minutes)
        return timezone(zone.utcoffset(None) or timedelta(0))
    if name == "UTC":
        return UTC
    try:
        return _zone(name)
    except ConfigurationError:
        raise ConfigurationError(
            f"the pytz zone {name!r} has no zoneinfo equivalent on this system "
            "(installing the tzdata package provides every IANA zone)"
        ) from None


def from_pytz_datetime(value: datetime) -> datetime:
    """``value`` re-expressed in the :func:`from_pytz` equivalent of its pytz zone.

    A datetime pytz localized (``zone.localize(naive)``, or ``zone.normalize(...)``)
    carries the right offset: its instant is kept. One given the pytz zone directly
    (``datetime(2026, 5, 1, 9, tzinfo=pytz_zone)``) carries the zone's first historical
    offset instead, which nobody means: its wall time is read in the zone. Datetimes
    without a pytz zone are returned as they are.
    """
    zone = value.tzinfo
    if zone is None or not is_pytz(zone):
        return value
    native = from_pytz(zone)
    name = getattr(zone, "zone", None)
    pytz = sys.modules["pytz"]
    if name is not None and zone is pytz.timezone(name):
        # The zone object pytz hands out, whose offset is the zone's first; a localized
        # datetime carries another object unless that first offset is right for it.
        wall = value.replace(tzinfo=native)
        offset = value.utcoffset()
        if offset not in (wall.utcoffset(), wall.replace(fold=1 - wall.fold).utcoffset()):
            return wall
    return value.astimezone(native)


#: IANA zones whose offset from UTC never changes (besides the ``Etc/`` area).
_FIXED_ZONE_KEYS = frozenset({"UTC", "UCT", "GMT", "Greenwich", "Universal", "Zulu"})


@functools.lru_cache(maxsize=256)
def _fixed_offset(tz: tzinfo) -> bool:
    if isinstance(tz, timezone):
        return True
    key = getattr(tz, "key", None) if isinstance(tz, ZoneInfo) else None
    return isinstance(key, str) and (key in _FIXED_ZONE_KEYS or key.startswith("Etc/"))


def is_fixed_offset(tz: tzinfo | None) -> bool:
    """True for zones whose UTC offset never changes: ``datetime.timezone`` offsets and
    the IANA zones ``UTC``, ``Etc/...`` and their aliases.

    In such a zone, wall-clock arithmetic and comparison *are* elapsed-time arithmetic, so
    the conversions through UTC that DST zones need (see ``triggers.interval``) can be
    skipped. Anything not known to be fixed, including every custom tzinfo, is False.
    """
    if tz is None:
        return False
    try:
        return _fixed_offset(tz)
    except TypeError:  # an unhashable custom tzinfo
        return False


#: Per zone: the epoch as a datetime in that zone when the zone has a fixed offset
#: (None otherwise), for :func:`timestamp`.
_EPOCHS: dict[tzinfo | None, datetime | None] = {}


#: The last datetime :func:`timestamp` was asked about, and its answer: a new task's run
#: time is asked about twice in a row (by its store, then by the wake-up check). Held as
#: one tuple, so threads never see a datetime paired with another's answer; holding the
#: datetime keeps its id from being reused while it is cached.
_last_timestamp: tuple[datetime | None, float] = (None, 0.0)


def timestamp(value: datetime) -> float:
    """``value.timestamp()`` (the very same float), faster for aware datetimes in zones
    with a fixed offset: subtracting an epoch that shares the tzinfo asks the zone for no
    offset, where ``timestamp()`` asks ZoneInfo("UTC") for one (about 0.4 µs). Stores and
    the scheduler take a timestamp of every run time they file or compare."""
    global _last_timestamp
    last = _last_timestamp
    if last[0] is value:
        return last[1]
    zone = value.tzinfo
    try:
        epoch = _EPOCHS[zone]
    except KeyError:
        epoch = _EPOCHS[zone] = (
            datetime.fromtimestamp(0, zone) if zone is not None and is_fixed_offset(zone) else None
        )
    except TypeError:  # an unhashable custom tzinfo
        epoch = None
    result = value.timestamp() if epoch is None else (value - epoch).total_seconds()
    _last_timestamp = (value, result)
    return result


def same_instant(known: datetime | None, asked: datetime) -> bool:
    """True when ``asked`` is ``known`` or the very same value: same wall time, same zone
    object, same ``fold``. (``==`` alone compares two zones' datetimes in real time, and
    one zone's by wall time ignoring ``fold``, which the repeated hour of a DST change
    tells apart.)"""
    return known is asked or (
        known is not None
        and known.tzinfo is asked.tzinfo
        and known.fold == asked.fold
        and known == asked
    )


def to_datetime(value: datetime | date | str | None, tz: tzinfo, name: str) -> datetime | None:
    """Coerce ``value`` to an aware datetime.

    Naive datetimes and ISO strings without an offset are read as wall time in ``tz``;
    a date means its midnight. ``name`` is the argument's name, for the error message.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not an ISO 8601 datetime") from None
    if not isinstance(value, datetime):
        if isinstance(value, date):
            value = datetime(value.year, value.month, value.day)
        else:
            raise ConfigurationError(
                f"{name} must be a datetime, date or ISO string, got {value!r}"
            )
    zone = value.tzinfo
    if zone is None:
        return value.replace(tzinfo=tz)
    if type(zone) is not ZoneInfo and type(zone) is not timezone and is_pytz(zone):
        return from_pytz_datetime(value)
    return value


def to_timedelta(value: float | timedelta | None, name: str) -> timedelta | None:
    """Coerce seconds (a finite int or float) or a timedelta to a timedelta; ``None``
    stays ``None``. ``name`` is the argument's name, for the error message."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, got {value!r}")
    try:
        return timedelta(seconds=value)
    except (ValueError, OverflowError):  # NaN, infinite, or beyond timedelta's range
        raise ConfigurationError(
            f"{name} must be a finite number of seconds (timedelta's range: about 2.7 "
            f"million years), got {value!r}"
        ) from None


# ---------------------------------------------------------------------------------------
# Lifecycle tasks: a generator's send/asend as a plain task function


def make_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a callable without a readable signature (typically ``generator.send``) into a
    plain function, so it can be a task.

    When the wrapped generator finishes (``send(False)`` made it run its cleanup and
    return) the ``StopIteration`` is the normal end of the lifecycle, not an error: the
    wrapper returns the generator's return value instead.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StopIteration as stop:
            return stop.value

    call.__name__ = getattr(fn, "__name__", "call")
    call.__qualname__ = f"make_function({getattr(fn, '__qualname__', call.__name__)})"
    call.__doc__ = getattr(fn, "__doc__", None)
    return call


def make_async_function(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The coroutine twin of :func:`make_function`, for ``async_generator.asend``.

    ``StopAsyncIteration`` (the async generator finished its cleanup) returns ``None``.
    """

    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except StopAsyncIteration:
            return None

    call.__name__ = getattr(fn, "__name__", "call")
    call.__qualname__ = f"make_async_function({getattr(fn, '__qualname__', call.__name__)})"
    call.__doc__ = getattr(fn, "__doc__", None)
    return call
