"""The task half of the scheduler's public API.

Every method hands its work to the scheduler's
:class:`~tickwork.schedulers._task_manager.TaskManager`; this class holds nothing but that
reference. The ``*_async`` twins do the same off the event loop: a store that does I/O
(SQL, Redis, files) is then never read or written on the loop's thread, so a slow
database cannot stall the loop. Call the twins from coroutines; the plain methods are
for sync code (and for the memory store, whose calls never wait).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, overload

from tickwork._spelling import SCHEDULER_METHODS
from tickwork.exceptions import InvalidTaskError
from tickwork.schedulers._run_now import RunNow
from tickwork.schedulers._task_manager import TaskManager
from tickwork.tasks import UNSET, Task
from tickwork.triggers.base import BaseTrigger

if TYPE_CHECKING:
    from tickwork.routers import TaskRouter

__all__ = ["TaskAPI"]

F = TypeVar("F", bound=Callable[..., Any])


class TaskAPI:
    """add_task, get_task(s), update/reschedule/pause/resume/delete/run, inspection, and
    their awaitable twins."""

    _tasks: TaskManager
    _run_now: RunNow
    identity: str

    @overload
    def add_task(
        self, fn_or_task: None = None, trigger: Any = None, **kwargs: Any
    ) -> Callable[[F], F]: ...

    @overload
    def add_task(
        self, fn_or_task: Callable[..., Any] | str | Task, trigger: Any = None, **kwargs: Any
    ) -> Task: ...

    def add_task(
        self,
        fn_or_task: Callable[..., Any] | str | Task | None = None,
        trigger: BaseTrigger | str | None = None,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        name: str | None = None,
        mistrigger_grace_time: float | timedelta | None = UNSET,
        coalesce: bool = UNSET,
        max_instances: int = UNSET,
        next_run_time: datetime | None = UNSET,
        store: str | None = None,
        executor: str | None = None,
        replace_existing: bool | Literal["keep"] = False,
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
    ) -> Task | Callable[[F], F]:
        """Schedule a callable (or a ``"module:function"`` reference, or a prepared
        :class:`~tickwork.tasks.Task`) and return the task.

        ``trigger`` is a trigger instance or an alias (``"date"``, ``"interval"``,
        ``"cron"``, ``"shutdown"``, ``"and"``, ``"or"``) built from ``trigger_args``;
        without one the task runs once, now. Called without a callable it is a decorator:
        ``@scheduler.add_task(trigger="interval", seconds=5)``. The callable may also be
        given as ``fn=`` (asyncz's spelling); APScheduler 3's ``func=``,
        ``misfire_grace_time=`` and ``jobstore=`` are taken too.

        ``replace_existing`` says what happens when a task with the same ``id`` exists
        (in the store, or added before start): ``False`` raises ``ConflictIdError``;
        ``True`` replaces it, and when the trigger is the same (and ``next_run_time`` is
        not given) the stored next run time stays, so a program that adds its tasks at
        every start drops no run that fell due while it was down (those follow the
        grace and coalesce rules: run, or reported ``TASK_MISSED``); ``"keep"`` keeps the
        stored task as it is and returns it. The decorator form with an ``id`` replaces
        unless told ``"keep"``.

        Raises, at this call: ``UnknownAliasError`` (trigger alias), ``InvalidTriggerError``
        (trigger arguments), ``InvalidTaskError`` (arguments that don't fit ``fn``,
        ``max_instances < 1`` ...), ``ReferenceResolutionError`` (a reference that doesn't
        import), ``ConflictIdError`` (duplicate id without ``replace_existing``) and
        ``SerializationError`` (a task a persistent store cannot keep),
        ``ConfigurationError`` (a ``replace_existing`` other than True, False, "keep").

        ``timeout``, ``retries``, ``retry_delay``, ``retry_backoff`` and ``retry_on``
        set the task's run policy (see :doc:`run history </run-history>`); unset ones
        come from ``task_defaults``. ``cooldown`` (seconds) keeps the task from running
        again sooner than that after a run ended, on any scheduler sharing its store (see
        :doc:`task options </task-options>`).
        come from ``task_defaults``. ``leader_only=True``: the task runs only on the
        leader of the schedulers sharing its store (see :doc:`leadership </leadership>`);
        refused with ``NoElectionError`` for a store that cannot elect one.
        ``tags``: a set of strings (``tags={"billing"}``) naming groups the task belongs
        to, for ``get_tasks(tag=)``, ``pause_tasks``, ``resume_tasks`` and
        ``remove_tasks`` (see :doc:`tags </tags>`); a bare string is refused.
        """
        # (Identity checks, not a tuple compared: this runs on every add.)
        policy = (
            None
            if timeout is UNSET
            and retries is UNSET
            and retry_delay is UNSET
            and retry_backoff is UNSET
            and retry_on is UNSET
            and cooldown is UNSET
            and leader_only is UNSET
            else (timeout, retries, retry_delay, retry_backoff, retry_on, cooldown, leader_only)
        )
        return self._tasks.add_task(
            fn_or_task,
            trigger,
            args,
            kwargs,
            id,
            name,
            mistrigger_grace_time,
            coalesce,
            max_instances,
            next_run_time,
            store,
            executor,
            replace_existing,
            trigger_args,
            policy,
            tags,
        )

    def add_tasks(self, tasks: Iterable[Task], store: str | None = None) -> list[Task]:
        """Add prepared tasks in one go (one transaction on SQL stores when running)."""
        return self._tasks.add_tasks(tasks, store)

    def include_router(self, router: TaskRouter) -> list[Task]:
        """Add every task declared on ``router`` and on the routers included in it
        (:class:`~tickwork.routers.TaskRouter`), in declaration order, each with
        ``add_task`` and ``replace_existing=True`` unless it says otherwise; returns them.

        Raises :class:`~tickwork.exceptions.RouterError` for a router this scheduler has
        already included (also through a router holding it), and for two tasks with one
        id; otherwise what ``add_task`` raises.
        """
        from tickwork.routers import include_router  # (routers import the task API)

        return include_router(self, router)

    def get_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Return the task with this id, or ``None``. Before start() a pending task is
        shown as it will be scheduled (a copy, with its next run time)."""
        return self._tasks.get_task(task_id, store)

    def get_tasks(self, store: str | None = None, tag: str | None = None) -> list[Task]:
        """Return the tasks of one store (or all): before start() the pending ones first,
        as they will be scheduled (copies, with their next run times), then the stored
        ones; each task once. With ``tag``, only the tasks that have it (one store call
        per store; see :doc:`tags </tags>`)."""
        return self._tasks.get_tasks(store, tag)

    def pause_tasks(self, tag: str, store: str | None = None) -> int:
        """Pause every task with ``tag`` in one store (or all), each with its
        ``TASK_MODIFIED`` event; returns how many were paused (paused ones are skipped).
        Raises ``InvalidTaskError`` for a tag that is not a non-empty string."""
        return self._tasks.pause_tasks(tag, store)

    def resume_tasks(self, tag: str, store: str | None = None) -> int:
        """Resume every paused task with ``tag`` in one store (or all), as
        :meth:`resume_task` does each; returns how many."""
        return self._tasks.resume_tasks(tag, store)

    def remove_tasks(self, tag: str, store: str | None = None) -> int:
        """Remove every task with ``tag`` in one store (or all), each with its
        ``TASK_REMOVED`` event; returns how many were removed."""
        return self._tasks.remove_tasks(tag, store)

    def get_task_page(
        self,
        search: str = "",
        paused: bool | None = None,
        offset: int = 0,
        limit: int = 50,
        store: str | None = None,
    ) -> tuple[list[Task], int]:
        """One page of :meth:`get_tasks` (from ``offset``, at most ``limit``) and how many
        tasks match in all: those whose id contains ``search`` (case-insensitive), paused
        (``True``), scheduled (``False``) or both (``None``). A SQL store answers it with
        one page's query, so a listing of 100,000 tasks stays quick."""
        return self._tasks.get_task_page(search, paused, offset, limit, store)

    def update_task(self, task_id: str, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a task (anything but ``id``). A new ``trigger`` (instance or
        alias) recomputes the next run time unless ``next_run_time`` is given too."""
        return self._tasks.update_task(task_id, store, **changes)

    def reschedule_task(
        self,
        task_id: str,
        store: str | None = None,
        trigger: BaseTrigger | str | None = None,
        **trigger_args: Any,
    ) -> Task:
        """Give a task a new trigger and the next run time it computes."""
        return self._tasks.reschedule_task(task_id, store, trigger, **trigger_args)

    def pause_task(self, task_id: str, store: str | None = None) -> Task:
        """Keep the task but stop running it (``next_run_time`` becomes ``None``)."""
        return self._tasks.pause_task(task_id, store)

    def resume_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Give a paused task its next run time from now; a task whose trigger is finished
        is deleted and ``None`` returned."""
        return self._tasks.resume_task(task_id, store)

    def delete_task(self, task_id: str, store: str | None = None) -> None:
        """Remove a task. Raises ``TaskLookupError`` for an unknown id."""
        self._tasks.delete_task(task_id, store)

    def remove_all_tasks(self, store: str | None = None) -> None:
        """Remove every task of one store, or of all stores and the pending list."""
        self._tasks.remove_all_tasks(store)

    def run_task(self, task_id: str, store: str | None = None) -> Task:
        """Run a task once now, outside its schedule (its next run time is unchanged),
        also while the scheduler is paused: a pause holds the schedule, and this is a
        command, not part of it. Raises ``MaxInstancesReachedError`` when it is already
        running ``max_instances`` times."""
        return self._tasks.run_task(task_id, store)

    def request_run(self, task_id: str, store: str | None = None) -> str:
        """Ask the scheduler(s) sharing the task's store to run it once now, and return
        the run's id (for :meth:`get_runs` and :meth:`cancel_run`). The request is a
        durable record in the store: exactly one scheduler of a fleet runs it, at its
        next look at the store, with the task's usual rules, events and run record; the
        schedule is not changed. It counts as missed only if no scheduler finds it
        within the task's ``mistrigger_grace_time`` or 60 s, whichever is longer
        (finding it takes up to the store's poll interval). This is how a process that only administers a store
        (the admin app, the ``tickwork`` command) starts a run; :meth:`run_task` runs
        the task in this process instead. Raises ``TaskLookupError`` for an unknown id,
        ``SchedulerNotRunningError`` before ``start()``."""
        return self._tasks.request_run(task_id, store, self.identity)

    async def run_task_now(self, task_id: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run a task now, through its executor (with its events, run record,
        ``max_instances`` and ``timeout``), and return what it returns, or raise what it
        raises (``RunTimeoutError`` past its timeout, ``RunCancelledError`` when
        cancelled). Arguments given replace the task's own (checked against its
        function); without any, it runs with its own. Made once: ``retries`` do not
        apply. Raises ``TaskLookupError`` for an unknown id, ``MaxInstancesReachedError``
        when ``max_instances`` runs are active, ``SchedulerNotRunningError`` when the
        scheduler is not running."""
        task = await asyncio.to_thread(self._tasks.find_for_run, task_id)
        given = bool(args or kwargs)
        future = self._run_now.start(task, args if given else None, kwargs if given else None)
        return await asyncio.wrap_future(future)

    def run_task_now_sync(
        self, task_id: str, /, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """:meth:`run_task_now` for synchronous code (a ``BackgroundScheduler``'s
        program): blocks until the run ends (at most ``timeout`` seconds, then raises
        ``TimeoutError``; the run goes on). Not from the scheduler's own event loop,
        whose runs it would wait for: use ``await run_task_now(...)`` there."""
        self._refuse_on_own_loop("run_task_now_sync", "await scheduler.run_task_now(...)")
        task = self._tasks.find_for_run(task_id)
        given = bool(args or kwargs)
        future = self._run_now.start(task, args if given else None, kwargs if given else None)
        return future.result(timeout)

    async def run_task_now_queued(
        self,
        task_id: str,
        /,
        *,
        priority: int = 0,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """:meth:`run_task_now`, but when the task already runs ``max_instances`` times
        the request waits for a free slot instead of raising
        ``MaxInstancesReachedError``: in a queue per task served higher ``priority``
        first, in arrival order within a level. Queueing and starting are logged
        (INFO). Cancelling the awaiting coroutine takes a waiting request out of the
        queue (a run already started goes on, as with :meth:`run_task_now`).

        The task's arguments are given as ``args`` / ``kwargs`` (replacing its own),
        not as ``*args, **kwargs``: that way no name of this method (``priority``)
        can collide with a keyword argument of the task's function."""
        _check_priority(priority)
        task = await asyncio.to_thread(self._tasks.find_for_run, task_id)
        request = self._run_now.enqueue(task, args, kwargs, priority)
        try:
            return await asyncio.wrap_future(request.future)
        except asyncio.CancelledError:
            self._run_now.withdraw(request)
            raise

    def run_task_now_queued_sync(
        self,
        task_id: str,
        /,
        *,
        priority: int = 0,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`run_task_now_queued` for synchronous code: blocks until the run ends
        (at most ``timeout`` seconds, then raises ``TimeoutError``: a request still
        waiting leaves the queue, a run already started goes on). Not from the
        scheduler's own event loop."""
        self._refuse_on_own_loop(
            "run_task_now_queued_sync", "await scheduler.run_task_now_queued(...)"
        )
        _check_priority(priority)
        task = self._tasks.find_for_run(task_id)
        request = self._run_now.enqueue(task, args, kwargs, priority)
        try:
            return request.future.result(timeout)
        except TimeoutError:
            self._run_now.withdraw(request)
            raise

    def _refuse_on_own_loop(self, method: str, instead: str) -> None:
        """Raise when called on the thread of the scheduler's event loop (overridden by
        the asyncio schedulers; others have no loop)."""

    def preview_task_runs(
        self, task_id: str, count: int = 5, store: str | None = None
    ) -> list[datetime]:
        """The task's next ``count`` fire times (without jitter's randomness settled);
        before start() those it will have when the scheduler starts now."""
        return self._tasks.preview_task_runs(task_id, count, store)

    def get_task_info(self, task_id: str, store: str | None = None) -> dict[str, Any]:
        """A plain-dict summary of one task, for dashboards and logs (before start(), as
        it will be scheduled)."""
        return self._tasks.get_task_info(task_id, store)

    def get_task_infos(self, store: str | None = None) -> list[dict[str, Any]]:
        """:meth:`get_task_info` for every task, in :meth:`get_tasks` order."""
        return self._tasks.get_task_infos(store)

    # -- awaitable twins: the same, off the event loop -----------------------------------------

    async def add_task_async(
        self, fn_or_task: Callable[..., Any] | str | Task, trigger: Any = None, **options: Any
    ) -> Task:
        """:meth:`add_task` from a coroutine, off the event loop (no decorator form)."""

        def add() -> Task:
            return self.add_task(fn_or_task, trigger, **options)

        return await asyncio.to_thread(add)

    async def add_tasks_async(self, tasks: Iterable[Task], store: str | None = None) -> list[Task]:
        """:meth:`add_tasks` off the event loop."""
        return await asyncio.to_thread(self._tasks.add_tasks, list(tasks), store)

    async def include_router_async(self, router: TaskRouter) -> list[Task]:
        """:meth:`include_router` off the event loop."""
        return await asyncio.to_thread(self.include_router, router)

    async def get_task_async(self, task_id: str, store: str | None = None) -> Task | None:
        """:meth:`get_task` off the event loop."""
        return await asyncio.to_thread(self._tasks.get_task, task_id, store)

    async def get_tasks_async(self, store: str | None = None, tag: str | None = None) -> list[Task]:
        """:meth:`get_tasks` off the event loop."""
        return await asyncio.to_thread(self._tasks.get_tasks, store, tag)

    async def pause_tasks_async(self, tag: str, store: str | None = None) -> int:
        """:meth:`pause_tasks` off the event loop."""
        return await asyncio.to_thread(self._tasks.pause_tasks, tag, store)

    async def resume_tasks_async(self, tag: str, store: str | None = None) -> int:
        """:meth:`resume_tasks` off the event loop."""
        return await asyncio.to_thread(self._tasks.resume_tasks, tag, store)

    async def remove_tasks_async(self, tag: str, store: str | None = None) -> int:
        """:meth:`remove_tasks` off the event loop."""
        return await asyncio.to_thread(self._tasks.remove_tasks, tag, store)

    async def update_task_async(
        self, task_id: str, store: str | None = None, **changes: Any
    ) -> Task:
        """:meth:`update_task` off the event loop."""
        call = functools.partial(self._tasks.update_task, task_id, store, **changes)
        return await asyncio.to_thread(call)

    async def reschedule_task_async(
        self,
        task_id: str,
        store: str | None = None,
        trigger: BaseTrigger | str | None = None,
        **trigger_args: Any,
    ) -> Task:
        """:meth:`reschedule_task` off the event loop."""
        call = functools.partial(
            self._tasks.reschedule_task, task_id, store, trigger, **trigger_args
        )
        return await asyncio.to_thread(call)

    async def pause_task_async(self, task_id: str, store: str | None = None) -> Task:
        """:meth:`pause_task` off the event loop."""
        return await asyncio.to_thread(self._tasks.pause_task, task_id, store)

    async def resume_task_async(self, task_id: str, store: str | None = None) -> Task | None:
        """:meth:`resume_task` off the event loop."""
        return await asyncio.to_thread(self._tasks.resume_task, task_id, store)

    async def delete_task_async(self, task_id: str, store: str | None = None) -> None:
        """:meth:`delete_task` off the event loop."""
        await asyncio.to_thread(self._tasks.delete_task, task_id, store)

    async def remove_all_tasks_async(self, store: str | None = None) -> None:
        """:meth:`remove_all_tasks` off the event loop."""
        await asyncio.to_thread(self._tasks.remove_all_tasks, store)

    async def run_task_async(self, task_id: str, store: str | None = None) -> Task:
        """:meth:`run_task` off the event loop."""
        return await asyncio.to_thread(self._tasks.run_task, task_id, store)

    async def request_run_async(self, task_id: str, store: str | None = None) -> str:
        """:meth:`request_run` off the event loop (the store is written in a thread)."""
        return await asyncio.to_thread(self.request_run, task_id, store)

    async def preview_task_runs_async(
        self, task_id: str, count: int = 5, store: str | None = None
    ) -> list[datetime]:
        """:meth:`preview_task_runs` off the event loop."""
        return await asyncio.to_thread(self._tasks.preview_task_runs, task_id, count, store)

    async def get_task_info_async(self, task_id: str, store: str | None = None) -> dict[str, Any]:
        """:meth:`get_task_info` off the event loop."""
        return await asyncio.to_thread(self._tasks.get_task_info, task_id, store)

    async def get_task_infos_async(self, store: str | None = None) -> list[dict[str, Any]]:
        """:meth:`get_task_infos` off the event loop."""
        return await asyncio.to_thread(self._tasks.get_task_infos, store)


class _Renamed:
    """A method name of APScheduler 3 or asyncz that tickwork spells otherwise (or has
    no counterpart of): reading it raises the AttributeError that says what to use.

    A class attribute per name rather than a ``__getattr__``: CPython looks attributes
    up more slowly on every instance of a class with ``__getattr__``, found or not
    (about 1,400 machine instructions more per ``add_task``). Set on :class:`TaskAPI`
    after the class is made, so type checkers and the API reference do not see them.
    """

    __slots__ = ("hint", "name")

    def __init__(self, name: str, hint: str) -> None:
        self.name = name
        self.hint = hint

    def __get__(self, obj: object, objtype: type | None = None) -> NoReturn:
        owner = type(obj).__name__ if obj is not None else getattr(objtype, "__name__", "?")
        raise AttributeError(
            f"{owner!r} object has no attribute {self.name!r}; {self.hint}",
            name=self.name,
            obj=obj,
        )


for _name, _hint in SCHEDULER_METHODS.items():
    setattr(TaskAPI, _name, _Renamed(_name, _hint))


def _check_priority(priority: object) -> None:
    """Refuse a priority that is not an int, by value."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidTaskError(f"a run-now priority must be an int, got {priority!r}")
