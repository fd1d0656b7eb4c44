"""The ``tickwork`` command (also ``python -m tickwork``): look at and change the tasks
and runs of a store a fleet runs, or of an application's scheduler; preview cron
expressions; serve the dashboard; run an application's scheduler in the foreground.

    tickwork tasks list --store URL [--json]
    tickwork tasks show|pause|resume|delete ID --store URL
    tickwork tasks run ID [--wait SECONDS] --store URL
    tickwork runs [--task ID] [--outcome error] [--since TIME] [--limit N] --store URL
    tickwork runs show|cancel RUN_ID --store URL
    tickwork preview ID [-n 10] --store URL
    tickwork cron "0 9 * * mon-fri" [--tz Europe/Berlin] [-n 10]
    tickwork dashboard --store URL [--host 127.0.0.1] [--port 8000] [--token TOKEN]
    tickwork run module:scheduler [--log-level info]

``--store URL`` is an SQLAlchemy URL, ``redis://…`` or a file store's directory (see
:func:`~tickwork.stores.store_from_url`); ``--app module:scheduler`` names an
application's scheduler instead. Output is a table for people, JSON with ``--json``.
The exit status says how it went (:class:`ExitCode`): 0 done, 1 error, 2 bad command
line, 3 unknown task or run id, 4 store unreachable, 5/6 ``tasks run --wait``: the run
failed / had not ended; each failure prints one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tickwork.cli._exits import ExitCode, exit_code_for, one_line
from tickwork.cli._parser import build_parser

__all__ = ["ExitCode", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default: the process's arguments) and return its exit
    status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:
        print("tickwork: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`tickwork runs --json | head`): not worth a traceback or
        # an error line; Python would otherwise complain again when flushing at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.ERROR
    except Exception as error:
        print(f"tickwork: error: {one_line(error)}", file=sys.stderr)
        return exit_code_for(error)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    from tickwork.cli._commands import dispatch

    return dispatch(args)
