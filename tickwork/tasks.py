"""The :class:`Task`: what to run, with which arguments, on which trigger, under which rules."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as fixed_zone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tickwork._run_policy import (
    _POLICIES,
    DEFAULT_POLICY,
    changed_policy,
    fill_policy,
    policy_from_state,
    policy_state,
    resolve_policy,
)
from tickwork._task_fields import (
    EMPTY_ARGS,
    EMPTY_KWARGS,
    EMPTY_TAGS,
    MODIFIABLE_FIELDS,
    UNSET,
    check_args,
    check_coalesce,
    check_executor,
    check_grace,
    check_kwargs,
    check_max_instances,
    check_next_run_time,
    check_tags,
    default_name,
    is_coroutine_function,
    new_id,
    resolve_rules,
)
from tickwork._task_profile import TaskProfile, intern_profile
from tickwork.context import context_parameter, pass_context
from tickwork.exceptions import InvalidTaskError, ReferenceResolutionError
from tickwork.triggers.base import BaseTrigger
from tickwork.utils import check_callable_args, obj_to_ref, ref_to_obj

if TYPE_CHECKING:
    from tickwork._task_owner import TaskOwner

__all__ = ["MODIFIABLE_FIELDS", "UNSET", "Task"]

#: Classes already seen to be triggers: ``isinstance`` against the abstract BaseTrigger
#: is a Python-level call, and Task() asks on every add_task.
_TRIGGER_TYPES: set[type] = set()

#: Fields kept in the task's shared profile, by their name on the task.
_PROFILE_FIELDS = frozenset(
    {
        "fn",
        "_fn_ref",
        "executor",
        "coalesce",
        "max_instances",
        "mistrigger_grace_time",
        "policy",
        "context",
    }
)


class Task:
    """A unit of scheduled work.

    Attributes (all readable; change them through :meth:`update`, never by assignment,
    so the store and a running scheduler see the change):

    * ``id`` (str, immutable) and ``name`` (defaults to the callable's qualified name);
    * ``fn``: the callable, given as a callable or a ``"package.module:qualname"`` string;
    * ``args`` (tuple) / ``kwargs`` (dict) it is called with, checked against its signature;
    * ``trigger``: a :class:`~tickwork.triggers.base.BaseTrigger`;
    * ``executor``: the alias of the executor that runs it; ``store_alias``: its store;
    * ``coalesce``: when several runs are due at once, run once instead of once each;
    * ``max_instances``: how many runs of this task may be active at the same time;
    * ``mistrigger_grace_time``: seconds a run may be late and still run (``None``: always);
    * ``next_run_time``: when it runs next; ``None`` means paused;
    * ``timeout``: seconds a run may take (``None``: no limit); ``retries``: how many more
      tries a failed run gets, ``retry_delay`` seconds later, growing by the factor
      ``retry_backoff`` per attempt, for the exception classes ``retry_on``;
    * ``cooldown``: seconds after a run ends before the task may run again, on any
      scheduler sharing its store (``None``: none).
    * ``leader_only``: runs only on the leader of the schedulers sharing its store (see
      :doc:`leadership </leadership>`).

    A task built with ``scheduler=`` is added to that scheduler at once; one built without
    is passed to ``scheduler.add_task(task)`` later.
    """

    # The fields that differ from task to task; the rest live in ``_profile``, shared with
    # every task that has the same (see tickwork/_task_profile.py).
    __slots__ = (
        "_profile",
        "_store_entry",
        "args",
        "id",
        "kwargs",
        "name",
        "next_run_time",
        "store_alias",
        "tags",
        "trigger",
    )

    _profile: TaskProfile
    name: str
    trigger: BaseTrigger
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    #: The task's tags (``add_task(tags={"billing"})``): a frozenset of strings, the one
    #: shared empty frozenset for an untagged task. ``scheduler.get_tasks(tag=...)``,
    #: ``pause_tasks``, ``resume_tasks`` and ``remove_tasks`` act on the tasks with a tag.
    tags: frozenset[str]

    def __init__(
        self,
        fn: Callable[..., Any] | str | None = None,
        trigger: BaseTrigger | None = None,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        name: str | None = None,
        executor: str | None = None,
        store_alias: str | None = None,
        coalesce: bool = UNSET,
        max_instances: int = UNSET,
        mistrigger_grace_time: float | timedelta | None = UNSET,
        next_run_time: datetime | None = UNSET,
        scheduler: TaskOwner | None = None,
        *,
        timeout: float | timedelta | None = UNSET,
        retries: int = UNSET,
        retry_delay: float | timedelta = UNSET,
        retry_backoff: float = UNSET,
        retry_on: type[BaseException] | Iterable[type[BaseException]] = UNSET,
        cooldown: float | timedelta | None = UNSET,
        leader_only: bool = UNSET,
        tags: Iterable[str] | None = None,
        **trigger_args: Any,
    ) -> None:
        if trigger_args or isinstance(trigger, str):
            trigger = _trigger_from_alias(trigger, trigger_args)
        policy = (timeout, retries, retry_delay, retry_backoff, retry_on, cooldown, leader_only)
        self._fill(
            fn,
            trigger,
            args,
            kwargs,
            id,
            name,
            executor,
            store_alias,
            coalesce,
            max_instances,
            mistrigger_grace_time,
            next_run_time,
            None,
            None,
            None if all(value is UNSET for value in policy) else policy,
        )
        if tags is not None:
            self.tags = check_tags(tags)
        if scheduler is not None:
            scheduler.add_task(self)

    def _fill(
        self,
        fn: Callable[..., Any] | str | None,
        trigger: BaseTrigger | None,
        args: Iterable[Any] | None,
        kwargs: Mapping[str, Any] | None,
        id: str | None,
        name: str | None,
        executor: str | None,
        store_alias: str | None,
        coalesce: bool,
        max_instances: int,
        mistrigger_grace_time: float | timedelta | None,
        next_run_time: datetime | None,
        defaults: Mapping[str, Any] | None = None,
        scheduler: weakref.ref[TaskOwner] | None = None,
        policy: tuple[Any, ...] | None = None,
    ) -> None:
        """Check and set every field. ``add_task`` calls this on ``Task.__new__(Task)``
        itself, positionally (keyword matching costs on every call), with the scheduler's
        ``defaults`` for the rules left ``UNSET`` and the scheduler to bind to, so the task
        gets its final profile at once."""
        # The same checks as _apply, written out flat: this runs on every add_task, and
        # a new task has no old values to keep when a check fails.
        if fn is None:
            raise InvalidTaskError("a task needs a callable (fn) or a 'module:function' reference")
        if id is not None and not isinstance(id, str):
            raise InvalidTaskError(f"a task id must be a string, got {id!r}")
        if isinstance(fn, str) or not callable(fn):
            fn, fn_ref = self._resolve_fn(fn)
        else:
            fn_ref = None
        self.args = args = EMPTY_ARGS if args is None else check_args(args)
        self.kwargs = kwargs = EMPTY_KWARGS if kwargs is None else check_kwargs(kwargs)
        context = context_parameter(fn)
        if context is None:
            check_callable_args(fn, args, kwargs)
        else:
            check_callable_args(fn, *pass_context(context, args, kwargs, None))
        if trigger is None:
            self.trigger = UNSET
        elif type(trigger) in _TRIGGER_TYPES or isinstance(trigger, BaseTrigger):
            _TRIGGER_TYPES.add(type(trigger))
            self.trigger = trigger
        else:
            raise InvalidTaskError(f"trigger must be a BaseTrigger instance, got {trigger!r}")
        self.id = id or new_id()
        coalesce, max_instances, grace = resolve_rules(
            coalesce, max_instances, mistrigger_grace_time, defaults
        )
        self.name = default_name(fn) if name is None else str(name)
        self._profile = intern_profile(
            (
                fn,
                fn_ref,
                "default" if executor is None else check_executor(executor),
                coalesce,
                max_instances,
                grace,
                scheduler,
                # The defaults' policy, found without a call when it exists (the common
                # case: this runs on every add_task).
                (
                    _POLICIES.get(
                        (
                            defaults["timeout"],
                            defaults["retries"],
                            defaults["retry_delay"],
                            defaults["retry_backoff"],
                            defaults["retry_on"],
                            defaults["cooldown"],
                            defaults["leader_only"],
                        )
                    )
                    if policy is None and defaults is not None
                    else None
                )
                or resolve_policy(policy, defaults),
                context,
            )
        )
        self.store_alias = store_alias
        self.tags = EMPTY_TAGS
        self.next_run_time = (
            next_run_time if next_run_time is UNSET else check_next_run_time(next_run_time)
        )
        self._store_entry: Any = None

    # -- the shared fields ------------------------------------------------------------------

    @property
    def fn(self) -> Callable[..., Any]:
        """The callable the task runs."""
        return self._profile.fn

    @property
    def executor(self) -> str:
        """The alias of the executor that runs the task."""
        return self._profile.executor

    @property
    def coalesce(self) -> bool:
        """When several runs are due at once, run once instead of once each."""
        return self._profile.coalesce

    @property
    def max_instances(self) -> int:
        """How many runs of this task may be active at the same time."""
        return self._profile.max_instances

    @property
    def mistrigger_grace_time(self) -> float | None:
        """Seconds a run may be late and still run (``None``: however late)."""
        return self._profile.mistrigger_grace_time

    @property
    def timeout(self) -> float | None:
        """Seconds a run may take (``None``: no limit); see :data:`~tickwork.events.TASK_TIMEOUT`."""
        return self._profile.policy.timeout

    @property
    def retries(self) -> int:
        """How many more tries a failed run gets (0: none)."""
        return self._profile.policy.retries

    @property
    def retry_delay(self) -> float:
        """Seconds from a failure to the first retry."""
        return self._profile.policy.retry_delay

    @property
    def retry_backoff(self) -> float:
        """The factor the delay between tries grows by per attempt."""
        return self._profile.policy.retry_backoff

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        """The exception classes a failed run is tried again for."""
        return self._profile.policy.retry_on

    @property
    def cooldown(self) -> float | None:
        """Seconds after a run ended before the task may run again, on any scheduler
        sharing its store (``None``: no cooldown); see :doc:`task options </task-options>`."""
        return self._profile.policy.cooldown

    @property
    def leader_only(self) -> bool:
        """True when the task runs only on the leader of the schedulers sharing its store
        (see :doc:`leadership </leadership>`)."""
        return self._profile.policy.leader_only

    @property
    def _fn_ref(self) -> str | None:
        return self._profile.fn_ref

    @property
    def _scheduler(self) -> weakref.ref[TaskOwner] | None:
        return self._profile.scheduler

    def _set_shared(self, **fields: Any) -> None:
        """Change fields of the profile (by their profile names): the task moves to the
        profile with those values, shared with the tasks that have it too."""
        self._profile = intern_profile(self._profile._replace(**fields))

    def _adopt(self, defaults: Mapping[str, Any], scheduler: weakref.ref[TaskOwner]) -> None:
        """Fill the run rules left ``UNSET`` from ``defaults`` and bind the task to
        ``scheduler``, in one change of profile."""
        fn, fn_ref, executor, coalesce, max_instances, grace, bound, policy, context = self._profile
        if (
            bound is scheduler
            and coalesce is not UNSET
            and max_instances is not UNSET
            and grace is not UNSET
            and policy.filled
        ):
            return  # (a task from add_task: built with both)
        coalesce, max_instances, grace = resolve_rules(coalesce, max_instances, grace, defaults)
        self._profile = intern_profile(
            (
                fn,
                fn_ref,
                executor,
                coalesce,
                max_instances,
                grace,
                scheduler,
                fill_policy(policy, defaults),
                context,
            )
        )

    # -- validation: every later change goes through here ---------------------------------

    def _apply(self, changes: Mapping[str, Any]) -> None:
        """Validate ``changes`` and apply them all, or none (on error nothing changes)."""
        if "id" in changes:
            raise InvalidTaskError(
                f"a task's id cannot be changed (task {self.id!r}, new id {changes['id']!r}); "
                "add a new task and delete this one instead"
            )
        if not MODIFIABLE_FIELDS.issuperset(changes):
            unknown = set(changes) - MODIFIABLE_FIELDS
            raise InvalidTaskError(
                f"unknown task field(s) {sorted(unknown)}; known: {sorted(MODIFIABLE_FIELDS)}"
            )
        values: dict[str, Any] = {}
        fn = changes.get("fn", UNSET)
        if fn is not UNSET:
            fn, values["_fn_ref"] = self._resolve_fn(fn)
            values["fn"] = fn
        else:
            fn = self.fn
        if "args" in changes:
            values["args"] = check_args(changes["args"])
        if "kwargs" in changes:
            values["kwargs"] = check_kwargs(changes["kwargs"])
        if changes.get("name") is not None:
            values["name"] = str(changes["name"])
        if "trigger" in changes:
            trigger = changes["trigger"]
            if not isinstance(trigger, BaseTrigger):
                raise InvalidTaskError(f"trigger must be a BaseTrigger instance, got {trigger!r}")
            values["trigger"] = trigger
        if "executor" in changes:
            values["executor"] = check_executor(changes["executor"])
        if changes.get("coalesce", UNSET) is not UNSET:
            values["coalesce"] = check_coalesce(changes["coalesce"])
        if changes.get("max_instances", UNSET) is not UNSET:
            values["max_instances"] = check_max_instances(changes["max_instances"])
        if changes.get("mistrigger_grace_time", UNSET) is not UNSET:
            values["mistrigger_grace_time"] = check_grace(changes["mistrigger_grace_time"])
        if changes.get("next_run_time", UNSET) is not UNSET:
            values["next_run_time"] = check_next_run_time(changes["next_run_time"])
        if "tags" in changes:
            values["tags"] = check_tags(changes["tags"])
        policy = changed_policy(self._profile.policy, changes)
        if policy is not None:
            values["policy"] = policy
        if "fn" in changes or "args" in changes or "kwargs" in changes:
            context = context_parameter(values.get("fn", fn))
            if "fn" in values:
                values["context"] = context
            given_kwargs = values.get("kwargs", self.kwargs)
            given_args = values.get("args", self.args)
            if context is not None:
                given_args, given_kwargs = pass_context(context, given_args, given_kwargs, None)
            check_callable_args(values.get("fn", fn), given_args, given_kwargs)
        shared = {
            ("fn_ref" if key == "_fn_ref" else key): values.pop(key)
            for key in _PROFILE_FIELDS.intersection(values)
        }
        if shared:
            self._set_shared(**shared)
        for key, value in values.items():
            setattr(self, key, value)

    @staticmethod
    def _resolve_fn(fn: Any) -> tuple[Callable[..., Any], str | None]:
        if isinstance(fn, str):
            resolved = ref_to_obj(fn)
            if not callable(resolved):
                raise ReferenceResolutionError(fn, f"it names {resolved!r}, which is not callable")
            return resolved, fn
        if not callable(fn):
            raise InvalidTaskError(
                f"fn must be a callable or a 'module:function' string, got {fn!r}"
            )
        return fn, None

    # -- derived information ------------------------------------------------------------

    @property
    def fn_ref(self) -> str:
        """The ``"module:qualname"`` reference of ``fn``.

        Raises :class:`~tickwork.exceptions.ReferenceResolutionError` for callables that
        have none (lambdas, closures, bound methods of instances).
        """
        ref = self._profile.fn_ref
        if ref is None:
            ref = obj_to_ref(self.fn)
            self._set_shared(fn_ref=ref)
        return ref

    @property
    def paused(self) -> bool:
        """True when the task has no next run time."""
        return self.next_run_time is None

    @property
    def is_coroutine(self) -> bool:
        """True when ``fn`` is an ``async def`` function (checked through wrappers)."""
        return is_coroutine_function(self.fn)

    def due_run_times(
        self, timezone: tzinfo, now: datetime, limit: int = 1000
    ) -> tuple[list[datetime], datetime | None]:
        """Return the fire times due at ``now`` (oldest first, at most ``limit``) and the
        fire time that follows the last of them (``None``: the trigger is finished).

        With ``coalesce`` only the last due time is run, but all are returned so the
        caller can report what it folded. ``limit`` keeps a tiny interval after a long
        outage from building a huge list; what is left comes due in the next pass.
        """
        run_times: list[datetime] = []
        next_time = self.next_run_time
        while next_time is not None and next_time <= now and len(run_times) < limit:
            run_times.append(next_time)
            next_time = self.trigger.get_next_trigger_time(timezone, next_time, now)
        return run_times, next_time

    def _shallow_copy(self) -> Task:
        """A new Task object sharing this one's field values (for stores and serializers
        that must not touch the original); it is held by no store."""
        clone = Task.__new__(Task)
        for slot in Task.__slots__:
            if hasattr(self, slot):
                setattr(clone, slot, getattr(self, slot))
        clone._store_entry = None
        return clone

    # -- methods that act through the scheduler ------------------------------------------

    def _bound_scheduler(self) -> TaskOwner:
        scheduler = self._scheduler() if self._scheduler is not None else None
        if scheduler is None:
            raise InvalidTaskError(
                f"task {self.id!r} is not attached to a scheduler; pass it to add_task() first"
            )
        return scheduler

    def update(self, **changes: Any) -> Task:
        """Change any field but ``id``; trigger keywords may be given with ``trigger=alias``."""
        if self._scheduler is None:
            self._apply(changes)
            return self
        self._bound_scheduler().update_task(self.id, self.store_alias, **changes)
        return self

    def reschedule(self, trigger: BaseTrigger | str, **trigger_args: Any) -> Task:
        """Give the task a new trigger and recompute its next run time."""
        self._bound_scheduler().reschedule_task(self.id, self.store_alias, trigger, **trigger_args)
        return self

    def pause(self) -> Task:
        """Stop the task from running until :meth:`resume`."""
        self._bound_scheduler().pause_task(self.id, self.store_alias)
        return self

    def resume(self) -> Task:
        """Give a paused task its next run time again (or delete it if it has none)."""
        self._bound_scheduler().resume_task(self.id, self.store_alias)
        return self

    def delete(self) -> None:
        """Remove the task from its store."""
        self._bound_scheduler().delete_task(self.id, self.store_alias)

    # -- state, for serializers ----------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Return a versioned dict of the task's fields; ``fn`` as its reference string.

        Raises :class:`~tickwork.exceptions.ReferenceResolutionError` when ``fn`` has no
        importable reference (serializers turn that into a ``SerializationError``).
        """
        return {
            "version": 1,
            "id": self.id,
            "name": self.name,
            "fn": self.fn_ref,
            "args": self.args,
            "kwargs": self.kwargs if type(self.kwargs) is dict else dict(self.kwargs),
            "trigger": self.trigger,
            "executor": self.executor,
            "coalesce": self.coalesce,
            "max_instances": self.max_instances,
            "mistrigger_grace_time": self.mistrigger_grace_time,
            "next_run_time": self.next_run_time,
            **policy_state(self._profile.policy),
            # Written only when there are any, sorted (a stable record): untagged records
            # look as they did before tags existed.
            **({"tags": sorted(self.tags)} if self.tags else {}),
        }

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """Restore the fields from a dict written by :meth:`__getstate__`.

        A state that holds a value a task cannot run with (a stored record that parses but
        has ``"coalesce": "yes"``, a ``next_run_time`` that is a string, a function
        reference naming something not callable) is refused with
        :class:`~tickwork.exceptions.InvalidTaskError` naming the field and the value:
        loaded, it would fail later, inside a scheduler's processing pass. The trigger's
        own state is checked by the serializers (``tickwork/serializers/_checks.py``).
        """
        try:
            version, task_id, name = state["version"], state["id"], state["name"]
            fn_ref, executor, coalesce = state["fn"], state["executor"], state["coalesce"]
            max_instances, grace = state["max_instances"], state["mistrigger_grace_time"]
            args, kwargs = state["args"], state["kwargs"]
            trigger, when = state["trigger"], state["next_run_time"]
        except KeyError:
            plain = False
        else:
            # The exact types the serializers write, compared inline: this runs for every
            # task a store loads, and a call would cost as much as all of it.
            plain = (
                version == 1
                and type(task_id) is str
                and task_id != ""
                and type(name) is str
                and type(fn_ref) is str
                and type(executor) is str
                and (coalesce is True or coalesce is False)
                and type(max_instances) is int
                and max_instances >= 1
                and (grace is None or (type(grace) is float and grace >= 0.0))  # (NaN fails)
                and (type(args) is tuple or type(args) is list)
                and (kwargs is EMPTY_KWARGS or type(kwargs) is dict)
                and type(trigger) in _TRIGGER_TYPES
                and (
                    when is None
                    or (
                        type(when) is datetime
                        and (type(when.tzinfo) is ZoneInfo or type(when.tzinfo) is fixed_zone)
                    )
                )
            )
            if plain and kwargs:
                for key in kwargs:  # (a loop costs less than any one-liner)
                    if type(key) is not str:
                        plain = False
                        break
        if not plain:
            version = state.get("version")
            if version != 1:
                raise InvalidTaskError(
                    f"cannot read task state version {version!r}; upgrade tickwork"
                )
            # Anything else is for the careful check to decide (a subclass, an int grace
            # time, a zone of another type are fine) and to word. Imported here: the
            # serializers import this module. (Past it, no field is missing.)
            from tickwork.serializers._checks import check_task_fields

            check_task_fields(state)
            if trigger is not UNSET:  # (a task not added yet has none)
                _TRIGGER_TYPES.add(type(trigger))  # a trigger: later loads go the quick way
        fn = ref_to_obj(fn_ref)
        if not callable(fn):
            raise InvalidTaskError(
                f"field 'fn' = {fn_ref!r} names a {type(fn).__name__} object, which is not callable"
            )
        self._store_entry = None
        self.store_alias = None
        self.id = task_id
        self.name = name
        # (The policy's entries are written only when they differ from the defaults.)
        policy = DEFAULT_POLICY if len(state) <= 12 else policy_from_state(state)
        self._profile = intern_profile(
            (
                fn,
                fn_ref,
                executor,
                coalesce,
                max_instances,
                grace,
                None,
                policy,
                context_parameter(fn),
            )
        )
        self.args = tuple(args) if args else EMPTY_ARGS
        self.kwargs = dict(kwargs) if kwargs else EMPTY_KWARGS
        self.trigger = trigger
        self.next_run_time = when
        tags = state.get("tags")
        self.tags = EMPTY_TAGS if tags is None else _tags_from_state(tags)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Task:
        """Build a task from a dict written by :meth:`__getstate__`."""
        task = cls.__new__(cls)
        task.__setstate__(state)
        return task

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Task):
            return self.id == other.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        next_run_time = getattr(self, "next_run_time", UNSET)
        if next_run_time is UNSET:
            when = "pending"
        elif next_run_time is None:
            when = "paused"
        else:
            when = next_run_time.isoformat()
        trigger = getattr(self, "trigger", UNSET)
        return f"<Task id={self.id!r} name={getattr(self, 'name', '?')!r} trigger={trigger!r} next={when}>"


def _trigger_from_alias(trigger: Any, trigger_args: dict[str, Any]) -> BaseTrigger:
    from tickwork.triggers import create_trigger

    alias = "date" if trigger is None else trigger
    if not isinstance(alias, str):
        raise InvalidTaskError(
            f"trigger keywords {sorted(trigger_args)} go with a trigger alias, "
            f"not with the instance {alias!r}"
        )
    return create_trigger(alias, **trigger_args)


def _tags_from_state(tags: Any) -> frozenset[str]:
    """The tags of a saved state: a list of tags, checked as at ``add_task``."""
    if not isinstance(tags, list):
        raise InvalidTaskError(f"field 'tags' = {tags!r} is not a list of tags")
    try:
        return check_tags(tags)
    except InvalidTaskError as exc:
        raise InvalidTaskError(f"field 'tags': {exc}") from None
