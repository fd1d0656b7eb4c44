"""The command line's grammar (argparse): every command, its arguments and its help."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import NoReturn

from tickwork._version import __version__
from tickwork.cli._exits import ExitCode
from tickwork.runs import OUTCOMES

__all__ = ["TARGET_DEFAULTS", "build_parser"]

#: The target options' values when not given. They are parsed with ``SUPPRESS`` as
#: default: argparse copies a sub-command's defaults over the values its parent
#: parsed, so ``runs --store URL cancel ID`` would otherwise lose the URL.
TARGET_DEFAULTS = {"store": None, "app": None, "table": None, "prefix": None, "json": False}

_LOG_LEVELS = ("debug", "info", "warning", "error")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _iso_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-04T09:00:00+01:00)"
        ) from None


def _target_options(json_option: bool = True) -> _Parser:
    parent = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    group = parent.add_argument_group("what to work on (one of --store and --app)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        "--store",
        metavar="URL",
        help="a store a fleet runs: an SQLAlchemy URL (sqlite:///tasks.db, "
        "postgresql+psycopg://host/db), redis://host:6379/0, or a file store's directory",
    )
    choice.add_argument(
        "--app",
        metavar="MODULE:SCHEDULER",
        help="an application's scheduler, imported (the current directory first on the "
        "path) and started paused in this process",
    )
    group.add_argument("--table", metavar="NAME", help="the SQL store's table name")
    group.add_argument("--prefix", metavar="PREFIX", help="the Redis store's key prefix")
    if json_option:
        parent.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``tickwork`` parser."""
    parser = _Parser(
        prog="tickwork",
        description="Look at and change a tickwork fleet's tasks and runs, preview cron "
        "expressions, serve the dashboard, run an application's scheduler.",
        epilog="exit status: 0 done, 1 error, 2 bad command line, 3 unknown task or run "
        "id, 4 store unreachable, 5 a waited-for run failed, 6 it had not ended",
    )
    parser.add_argument("--version", action="version", version=f"tickwork {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_tasks(commands)
    _add_runs(commands)
    commands.add_parser(
        "fleet",
        parents=[_target_options()],
        help="the schedulers seen at work on the store, and which of them leads",
    )
    preview = commands.add_parser(
        "preview", parents=[_target_options()], help="a task's next run times, DST changes marked"
    )
    preview.add_argument("task_id", metavar="ID")
    preview.add_argument("-n", "--count", type=_positive_int, default=10, help="how many (10)")
    _add_cron(commands)
    _add_dashboard(commands)
    run = commands.add_parser(
        "run", help="run an application's scheduler in the foreground until Ctrl-C/SIGTERM"
    )
    run.add_argument("app", metavar="MODULE:SCHEDULER", help="e.g. myapp.tasks:scheduler")
    run.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
    return parser


def _add_tasks(commands: argparse._SubParsersAction[_Parser]) -> None:
    tasks = commands.add_parser("tasks", help="list, show, pause, resume, run or delete tasks")
    actions = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[_target_options()], help="every task")
    helps = {
        "show": "one task, every field",
        "pause": "pause a task (the fleet stops running it)",
        "resume": "resume a paused task",
        "run": "ask the fleet to run a task once now (its schedule is unchanged)",
        "delete": "delete a task",
    }
    for action, text in helps.items():
        sub = actions.add_parser(action, parents=[_target_options()], help=text)
        sub.add_argument("task_id", metavar="ID")
        if action == "run":
            sub.add_argument(
                "--wait",
                metavar="SECONDS",
                type=_positive_float,
                help="wait for the run to end, at most SECONDS; exit 5 if it failed, 6 "
                "if it had not ended",
            )


def _add_runs(commands: argparse._SubParsersAction[_Parser]) -> None:
    runs = commands.add_parser(
        "runs", parents=[_target_options()], help="the run history; show or cancel a run"
    )
    runs.add_argument("--task", metavar="ID", help="runs of this task only")
    runs.add_argument("--outcome", choices=OUTCOMES, help="runs with this outcome only")
    runs.add_argument(
        "--since",
        metavar="TIME",
        type=_iso_time,
        help="runs scheduled at or after TIME (ISO 8601; UTC when it has no offset)",
    )
    runs.add_argument("--limit", type=_positive_int, default=50, help="at most this many (50)")
    actions = runs.add_subparsers(
        dest="action", metavar="ACTION", title="actions (without one, the runs are listed)"
    )
    for action, text in (("show", "one run, with its traceback"), ("cancel", "cancel a run")):
        sub = actions.add_parser(action, parents=[_target_options()], help=text)
        sub.add_argument("run_id", metavar="RUN_ID")


def _add_cron(commands: argparse._SubParsersAction[_Parser]) -> None:
    cron = commands.add_parser(
        "cron", help="the next times of a cron expression in a time zone, DST changes marked"
    )
    cron.add_argument("expression", metavar="EXPRESSION", help='e.g. "0 9 * * mon-fri"')
    cron.add_argument("--tz", metavar="ZONE", help="an IANA zone (default: the local zone)")
    cron.add_argument("-n", "--count", type=_positive_int, default=10, help="how many (10)")
    cron.add_argument(
        "--start",
        metavar="TIME",
        type=_iso_time,
        help="from this time (ISO 8601; in ZONE when it has no offset), not now",
    )
    cron.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_dashboard(commands: argparse._SubParsersAction[_Parser]) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        parents=[_target_options(json_option=False)],
        help="serve the admin app (needs tickwork[web])",
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8000, help="port (8000)")
    secret = dashboard.add_mutually_exclusive_group()
    secret.add_argument("--token", help="the access token (default: a new one, printed)")
    secret.add_argument("--token-file", metavar="PATH", help="read the token from a file")
    dashboard.add_argument("--read-only", action="store_true", help="allow no changes")
    dashboard.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
