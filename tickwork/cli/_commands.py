"""From parsed arguments to the command that does the work."""

from __future__ import annotations

import argparse
import logging

from tickwork.cli._cron import cron
from tickwork.cli._exits import ExitCode
from tickwork.cli._fleet import fleet
from tickwork.cli._output import Output
from tickwork.cli._parser import TARGET_DEFAULTS
from tickwork.cli._runs import runs_cancel, runs_list, runs_show
from tickwork.cli._serve import dashboard, run
from tickwork.cli._targets import open_target
from tickwork.cli._tasks import preview, task_action, tasks_list, tasks_show

__all__ = ["dispatch"]

_TASK_COMMANDS = {
    "list": tasks_list,
    "show": tasks_show,
    "pause": task_action,
    "resume": task_action,
    "run": task_action,
    "delete": task_action,
}
_RUN_COMMANDS = {None: runs_list, "show": runs_show, "cancel": runs_cancel}


def dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; its failures are raised (see ``main``)."""
    for name, default in TARGET_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    if args.command == "run":
        run(args)
        return ExitCode.OK
    if args.command == "dashboard":
        dashboard(args)
        return ExitCode.OK
    out = Output(args.json)
    if args.command == "cron":
        cron(out, args)
        return ExitCode.OK
    if args.command == "tasks":
        command = _TASK_COMMANDS[args.action]
    elif args.command == "runs":
        command = _RUN_COMMANDS[getattr(args, "action", None)]
    elif args.command == "fleet":
        command = fleet
    else:
        command = preview
    # The administering scheduler's own warnings (a store it cannot reach, say) are
    # worth seeing; its start and stop are not.
    logging.basicConfig(
        level=logging.WARNING, format="tickwork: %(levelname)s %(name)s: %(message)s"
    )
    with open_target(args.store, args.app, args.table, args.prefix) as target:
        command(target, out, args)
    return ExitCode.OK
