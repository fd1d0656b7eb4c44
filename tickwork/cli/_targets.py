"""What a command works on: a store a fleet runs (``--store URL``, administered by a
paused scheduler of this process, see :mod:`tickwork.admin`), or an application's own
scheduler (``--app module:scheduler``, started paused here)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from tickwork.admin import AdminTarget
from tickwork.exceptions import ConfigurationError, StoreUnavailableError

if TYPE_CHECKING:
    from tickwork.schedulers._foreground import Scheduler

__all__ = ["CommandTarget", "Target", "load_app", "open_target"]


class CommandTarget(AdminTarget, Protocol):
    """What the commands ask of a scheduler: the admin surface, and every task's
    summary from one listing (every scheduler has both)."""

    def get_task_infos(self, store: str | None = None) -> list[dict[str, Any]]: ...


class Target:
    """The scheduler a command talks to, and where it came from."""

    def __init__(self, scheduler: CommandTarget, app: str | None) -> None:
        self.scheduler = scheduler
        self.app = app

    def check_reaches_fleet(self, task_id: str) -> None:
        """Refuse a change to a task of an application's memory store: this process has
        a copy of it, and the running application would never see the change."""
        if self.app is None:
            return
        alias = self.scheduler.get_task_info(task_id)["store"]
        kind = self.scheduler.get_scheduler_info()["stores"].get(alias)
        if kind == "MemoryStore":
            raise ConfigurationError(
                f"task {task_id!r} of {self.app} is in a memory store, which lives inside "
                "the application's process: a change made here would not reach it (use "
                "the application's admin app, or a persistent store)"
            )


@contextmanager
def open_target(
    store: str | None, app: str | None, table: str | None, prefix: str | None
) -> Iterator[Target]:
    """The target the options name, shut down when the block ends."""
    if app is not None:
        if table is not None or prefix is not None:
            raise ConfigurationError("--table and --prefix apply to --store, not to --app")
        from tickwork.schedulers._foreground import started_paused

        with started_paused(load_app(app)) as scheduler:
            yield Target(scheduler, app)
        return
    if store is None:
        raise ConfigurationError("one of --store URL or --app module:scheduler is required")
    check_store_exists(store)
    import_from_cwd()  # so that the stored tasks' functions import, as in the application
    from tickwork.admin import administer

    with administer(store, tablename=table, prefix=prefix) as scheduler:
        yield Target(scheduler, None)


def load_app(ref: str) -> Scheduler:
    """The scheduler ``ref`` (``"package.module:attribute"``) names, imported as uvicorn
    imports an app: from the current directory first."""
    from tickwork.schedulers._foreground import check_scheduler
    from tickwork.utils import ref_to_obj

    module, _, attribute = ref.partition(":")
    if not module or not attribute:
        raise ConfigurationError(
            f"{ref!r} is not a 'module:attribute' reference (e.g. 'myapp.tasks:scheduler')"
        )
    import_from_cwd()
    return check_scheduler(ref_to_obj(ref), ref)


def import_from_cwd() -> None:
    """Put the current directory first on the import path, as ``python -m`` does (the
    console script's path starts with its own directory instead)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def check_store_exists(url: str) -> None:
    """Refuse a file store directory or SQLite file that does not exist: the stores
    create them, and a mistyped path must be an error rather than a new, empty store."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("", "file"):
        path = Path(unquote(urlsplit(url).path) if scheme else url).expanduser()
        if not path.is_dir():
            raise StoreUnavailableError(f"no file store at {str(path)!r}: no such directory")
    elif scheme.split("+")[0] == "sqlite":
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        database = parsed.database
        if not database or database == ":memory:":
            raise ConfigurationError(
                f"store URL {url!r} is an in-memory SQLite database, which nothing outside "
                "its process can see"
            )
        if parsed.query.get("uri"):
            return  # a "file:" URI with its own options: SQLite decides
        if not Path(database).expanduser().is_file():
            raise StoreUnavailableError(f"no SQLite database at {database!r}: no such file")
