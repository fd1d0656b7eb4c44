"""The long-running commands: ``tickwork dashboard`` (the admin app, served by
uvicorn) and ``tickwork run module:scheduler`` (an application's scheduler in the
foreground until SIGINT/SIGTERM, like ``celery beat``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from tickwork.cli._exits import CommandFailed
from tickwork.cli._targets import load_app, open_target

__all__ = ["configure_logging", "dashboard", "run"]

logger = logging.getLogger("tickwork.cli")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(level: str) -> None:
    """Log lines with their time and source to stderr, from ``level`` up."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(args: argparse.Namespace) -> None:
    """Run the application's scheduler until a signal (or its own code) stops it."""
    from tickwork.schedulers._foreground import run_in_foreground

    configure_logging(args.log_level)
    scheduler = load_app(args.app)
    name = f"{type(scheduler).__name__} {scheduler.identity}"
    logger.info("running %s from %s (Ctrl-C or SIGTERM stops it)", name, args.app)
    run_in_foreground(scheduler)
    logger.info("%s has shut down", name)


def dashboard(args: argparse.Namespace) -> None:
    """Serve the admin app for the target until Ctrl-C/SIGTERM."""
    try:
        # (by name: tickwork.web is optional, and absent from some checkouts' type check)
        admin_app = importlib.import_module("tickwork.web").admin_app
    except ImportError as exc:  # MissingDependencyError is an ImportError as well
        raise CommandFailed(
            f"the dashboard needs the web extra: pip install 'tickwork[web]' ({exc})"
        ) from None
    try:
        import uvicorn
    except ImportError:
        raise CommandFailed(
            "tickwork dashboard serves the admin app with uvicorn, which is not installed: "
            "pip install 'tickwork[web]'"
        ) from None
    token = _token(args)
    configure_logging(args.log_level)
    with open_target(args.store, args.app, args.table, args.prefix) as target:
        app = admin_app(target.scheduler, token=token, read_only=args.read_only)
        url = f"http://{args.host}:{args.port}/"
        print(f"tickwork dashboard on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
        with _stopped_by_signals():
            uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: stop serving."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """End the block normally on SIGINT/SIGTERM. While uvicorn serves, its own handlers
    shut the server down gracefully and then raise the signal again for the handler
    before theirs (this one): without it, the process would end *by* the signal, before
    the target is shut down and with a status of 143 or a KeyboardInterrupt."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signum)

    previous = {signum: signal.signal(signum, stop) for signum in _STOP_SIGNALS}
    try:
        yield
    except _Stop as stopped:
        logger.info("stopped by %s", signal.Signals(stopped.args[0]).name)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _token(args: argparse.Namespace) -> str:
    """The access token: ``--token``, the first line of ``--token-file``, or a new
    random one, printed (as Jupyter does), so the dashboard is never open to anyone."""
    if args.token_file is not None:
        try:
            lines = Path(args.token_file).read_text().splitlines()
        except OSError as exc:
            raise CommandFailed(f"cannot read --token-file {args.token_file!r}: {exc}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise CommandFailed(f"--token-file {args.token_file!r} is empty")
        return token
    if args.token:
        return str(args.token)
    token = secrets.token_urlsafe(24)
    print(
        f"dashboard token (pass --token or --token-file to choose one): {token}",
        file=sys.stderr,
        flush=True,
    )
    return token
