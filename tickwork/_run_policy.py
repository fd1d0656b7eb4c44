"""A task's run policy: how long a run may take and how a failed run is tried again.

The task options ``timeout``, ``retries``, ``retry_delay``, ``retry_backoff``,
``retry_on``, ``cooldown`` and ``leader_only`` travel together as one :class:`RunPolicy`, a field of the task's shared
profile (:mod:`tickwork._task_profile`): tasks that leave them at their defaults share
one object, and the add path handles one value instead of five.

Each value goes through a ``check_*`` function here, which raises
:class:`~tickwork.exceptions.InvalidTaskError` naming the value, at ``add_task`` (or
``update``) — never later, inside a pass.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Final

from tickwork._task_fields import UNSET
from tickwork.exceptions import InvalidTaskError, ReferenceResolutionError
from tickwork.utils import obj_to_ref, ref_to_obj

__all__ = [
    "DEFAULT_POLICY",
    "POLICY_CHECKS",
    "POLICY_FIELDS",
    "RunPolicy",
    "changed_policy",
    "check_cooldown",
    "check_leader_only",
    "check_retries",
    "check_retry_backoff",
    "check_retry_delay",
    "check_retry_on",
    "check_timeout",
    "describe",
    "fill_policy",
    "is_retried",
    "policy_from_state",
    "policy_state",
    "resolve_policy",
    "retry_delay_for",
]

#: The options, in :class:`RunPolicy` order.
POLICY_FIELDS: Final = (
    "timeout",
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_on",
    "cooldown",
    "leader_only",
)


class RunPolicy:
    """A task's ``timeout`` (seconds or None), ``retries`` (how many more tries a failed
    run gets), ``retry_delay`` (seconds before the first retry), ``retry_backoff`` (the
    factor the delay grows by per attempt) and ``retry_on`` (the exception classes a
    retry is made for). Fields are ``UNSET`` on a task not added to a scheduler yet.

    Policies are interned (:func:`resolve_policy` & co. return the one object for each
    set of values), so they compare and hash by identity: the task profile that holds
    one is hashed on every ``add_task``, and a tuple of five fields (one of them a tuple
    of classes) would be hashed anew each time."""

    __slots__ = (*POLICY_FIELDS, "filled")

    timeout: float | None
    retries: int
    retry_delay: float
    retry_backoff: float
    retry_on: tuple[type[BaseException], ...]
    #: Seconds no run may start after a run of the task ended, on any member of a
    #: fleet (``None``: none); see :mod:`tickwork.schedulers._spacing`.
    cooldown: float | None
    #: Runs only on the fleet's leader (see :mod:`tickwork.schedulers._leadership`).
    leader_only: bool
    #: True when no field is ``UNSET`` (asked on every add: a loop would cost more).
    filled: bool

    def __init__(
        self,
        timeout: float | None,
        retries: int,
        retry_delay: float,
        retry_backoff: float,
        retry_on: tuple[type[BaseException], ...],
        cooldown: float | None = None,
        leader_only: bool = False,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_backoff = retry_backoff
        self.retry_on = retry_on
        self.cooldown = cooldown
        self.leader_only = leader_only
        self.filled = UNSET not in (
            timeout,
            retries,
            retry_delay,
            retry_backoff,
            retry_on,
            cooldown,
            leader_only,
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(
            (
                self.timeout,
                self.retries,
                self.retry_delay,
                self.retry_backoff,
                self.retry_on,
                self.cooldown,
                self.leader_only,
            )
        )

    def _replace(self, **changes: Any) -> RunPolicy:
        """The interned policy with ``changes`` (values already checked) applied."""
        return _intern(
            tuple(changes.get(name, value) for name, value in zip(POLICY_FIELDS, self, strict=True))
        )

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(POLICY_FIELDS, self, strict=True)
        )
        return f"RunPolicy({fields})"


#: The policy of a task that sets none of the options, under default ``task_defaults``.
DEFAULT_POLICY: Final = RunPolicy(None, 0, 1.0, 2.0, (Exception,), None, False)


def _seconds(value: Any) -> float | None:
    """``value`` as float seconds (a number or a timedelta), or None if it is neither."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return float(seconds)


def check_timeout(value: Any) -> float | None:
    """Seconds above 0 (a number or a timedelta), or ``None`` (no limit)."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None or not 0 < seconds < math.inf:  # (NaN fails every comparison)
        hint = "; use None for no limit" if seconds in (0.0, math.inf) else ""
        raise InvalidTaskError(
            f"timeout must be seconds > 0, a timedelta or None, got {value!r}{hint}"
        )
    return seconds


def check_retries(value: Any) -> int:
    """A whole number of retries, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidTaskError(
            f"retries must be a whole number >= 0 (how many more tries a failed run gets), "
            f"got {value!r}"
        )
    return int(value)


def check_retry_delay(value: Any) -> float:
    """Seconds, 0 or more (a number or a timedelta)."""
    seconds = _seconds(value)
    if seconds is None or not 0 <= seconds < math.inf:
        raise InvalidTaskError(f"retry_delay must be seconds >= 0 or a timedelta, got {value!r}")
    return seconds


def check_retry_backoff(value: Any) -> float:
    """A finite factor of at least 1 (1: every retry waits ``retry_delay``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value < math.inf:
        raise InvalidTaskError(
            f"retry_backoff must be a number >= 1 (the factor the delay grows by per "
            f"attempt; 1 keeps it constant), got {value!r}"
        )
    return float(value)


def check_retry_on(value: Any) -> tuple[type[BaseException], ...]:
    """An exception class, or a tuple/list of them (at least one)."""
    classes = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not classes:
        raise InvalidTaskError(
            "retry_on must name at least one exception class (for no retries, set retries=0)"
        )
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise InvalidTaskError(
                f"retry_on must be exception classes (e.g. retry_on=(ConnectionError,)), "
                f"got {cls!r}"
            )
    return classes


def check_cooldown(value: Any) -> float | None:
    """Seconds above 0 (a number or a timedelta), or ``None`` (no cooldown)."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None or not 0 < seconds < math.inf:
        hint = "; use None for no cooldown" if seconds == 0.0 else ""
        raise InvalidTaskError(
            f"cooldown must be seconds > 0 (how long after a run ends the task may run "
            f"again), a timedelta or None, got {value!r}{hint}"
        )
    return seconds


def check_leader_only(value: Any) -> bool:
    """``True`` or ``False``, nothing else (``leader_only="no"`` would otherwise be true)."""
    if value is True or value is False:
        return value
    raise InvalidTaskError(
        f"leader_only must be True (run only on the fleet's leader) or False, got {value!r}"
    )


#: The check of each option, by name: the one list of them.
POLICY_CHECKS: Final[dict[str, Callable[[Any], Any]]] = {
    "timeout": check_timeout,
    "retries": check_retries,
    "retry_delay": check_retry_delay,
    "retry_backoff": check_retry_backoff,
    "retry_on": check_retry_on,
    "cooldown": check_cooldown,
    "leader_only": check_leader_only,
}

#: Policies by their fields: equal policies are one object (tasks share their profile).
_POLICIES: dict[tuple[Any, ...], RunPolicy] = {tuple(DEFAULT_POLICY): DEFAULT_POLICY}
_lock = threading.Lock()


def _intern(fields: tuple[Any, ...]) -> RunPolicy:
    policy = _POLICIES.get(fields)
    if policy is None:
        policy = RunPolicy(*fields)
        with _lock:
            if len(_POLICIES) >= 1024:  # (bounded: policies made per task are possible)
                # Kept: the default one, so that a default policy stays that object.
                _POLICIES.clear()
                _POLICIES[tuple(DEFAULT_POLICY)] = DEFAULT_POLICY
            policy = _POLICIES.setdefault(fields, policy)
    return policy


def resolve_policy(given: tuple[Any, ...] | None, defaults: Mapping[str, Any] | None) -> RunPolicy:
    """The task's policy: each value given (``UNSET`` where not) checked, the others
    from ``defaults`` (the scheduler's ``task_defaults``, checked when it took them), or
    left ``UNSET`` without defaults (a task not added yet: the scheduler fills them in
    through this same function when it is added)."""
    if given is None:
        if defaults is None:
            return _intern((UNSET,) * len(POLICY_FIELDS))
        # (Spelt out, not a loop: this runs on every add_task.)
        fields = (
            defaults["timeout"],
            defaults["retries"],
            defaults["retry_delay"],
            defaults["retry_backoff"],
            defaults["retry_on"],
            defaults["cooldown"],
            defaults["leader_only"],
        )
        policy = _POLICIES.get(fields)
        return policy if policy is not None else _intern(fields)
    values = []
    for name, value in zip(POLICY_FIELDS, given, strict=True):
        if value is not UNSET:
            values.append(POLICY_CHECKS[name](value))
        else:
            values.append(UNSET if defaults is None else defaults[name])
    return _intern(tuple(values))


def fill_policy(policy: RunPolicy, defaults: Mapping[str, Any]) -> RunPolicy:
    """``policy`` with its ``UNSET`` fields taken from ``defaults``."""
    if policy.filled:
        return policy
    return _intern(
        tuple(
            defaults[name] if value is UNSET else value
            for name, value in zip(POLICY_FIELDS, policy, strict=True)
        )
    )


def changed_policy(policy: RunPolicy, changes: Mapping[str, Any]) -> RunPolicy | None:
    """``policy`` with the options among ``changes`` checked and applied; ``None`` when
    ``changes`` holds none of them."""
    if not any(name in changes for name in POLICY_FIELDS):
        return None
    return _intern(
        tuple(
            POLICY_CHECKS[name](changes[name])
            if name in changes and changes[name] is not UNSET
            else getattr(policy, name)
            for name in POLICY_FIELDS
        )
    )


def policy_state(policy: RunPolicy) -> dict[str, Any]:
    """The entries a task's saved state gets for its policy: none for the default one
    (records written before these options existed look the same); else the five retry
    and timeout entries when any of them differs from its default, the ``retry_on``
    classes by reference (``"module:QualName"``), and ``cooldown`` and ``leader_only`` when they are set. A class
    without an importable reference raises
    :class:`~tickwork.exceptions.ReferenceResolutionError` naming it, which a persistent
    store reports when the task is added. Options a task built outside a scheduler left
    unset are saved as the built-in defaults."""
    if not policy.filled:  # (a task no scheduler filled in: the built-in defaults)
        policy = _intern(
            tuple(
                default if value is UNSET else value
                for value, default in zip(policy, DEFAULT_POLICY, strict=True)
            )
        )
    if policy is DEFAULT_POLICY:
        return {}
    state: dict[str, Any] = {}
    if tuple(policy)[:5] != tuple(DEFAULT_POLICY)[:5]:
        state = {
            "timeout": policy.timeout,
            "retries": policy.retries,
            "retry_delay": policy.retry_delay,
            "retry_backoff": policy.retry_backoff,
            "retry_on": [obj_to_ref(cls) for cls in policy.retry_on],
        }
    if policy.cooldown is not None:
        state["cooldown"] = policy.cooldown
    if policy.leader_only:
        state["leader_only"] = True
    return state


def policy_from_state(state: Mapping[str, Any]) -> RunPolicy:
    """The policy of a saved task state (see :func:`policy_state`); every value checked
    as at ``add_task``, the classes imported from their references."""
    leader_only = state.get("leader_only", False)
    if "retries" not in state:
        if "cooldown" not in state and leader_only is False:
            return DEFAULT_POLICY
        return resolve_policy(
            (*tuple(DEFAULT_POLICY)[:5], state.get("cooldown"), leader_only), None
        )
    refs = state.get("retry_on")
    if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
        raise InvalidTaskError(f"field 'retry_on' = {refs!r} is not a list of class references")
    classes = []
    for ref in refs:
        try:
            classes.append(ref_to_obj(ref))
        except ReferenceResolutionError as exc:
            raise InvalidTaskError(f"field 'retry_on': {exc}") from None
    given = (
        state.get("timeout"),
        state["retries"],
        state.get("retry_delay", DEFAULT_POLICY.retry_delay),
        state.get("retry_backoff", DEFAULT_POLICY.retry_backoff),
        classes,
        state.get("cooldown"),
        leader_only,
    )
    return resolve_policy(given, None)


def retry_delay_for(policy: RunPolicy, failed_attempt: int) -> float:
    """Seconds to wait before the retry that follows ``failed_attempt`` (1 for the first
    try): ``retry_delay * retry_backoff ** (failed_attempt - 1)``."""
    try:
        return policy.retry_delay * policy.retry_backoff ** (failed_attempt - 1)
    except OverflowError:  # (a huge backoff after many attempts)
        return math.inf


def is_retried(policy: RunPolicy, failed_attempt: int, exc: BaseException | None) -> bool:
    """True when a run that failed on ``failed_attempt`` with ``exc`` is tried again."""
    return failed_attempt <= policy.retries and exc is not None and isinstance(exc, policy.retry_on)


def describe(classes: Iterable[type[BaseException]]) -> str:
    """``"ConnectionError, TimeoutError"``: the classes' names, for messages."""
    return ", ".join(cls.__name__ for cls in classes)
