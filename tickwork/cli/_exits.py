"""The exit statuses of the ``tickwork`` command, and the one-line error for each
failure: what scripts branch on."""

from __future__ import annotations

from enum import IntEnum

from tickwork.exceptions import (
    ConfigurationError,
    MissingDependencyError,
    ReferenceResolutionError,
    StoreUnavailableError,
    TaskLookupError,
)

__all__ = ["CommandFailed", "ExitCode", "RunNotFound", "exit_code_for", "one_line"]


class ExitCode(IntEnum):
    """What ``tickwork`` exits with. Scripts may rely on these numbers."""

    #: The command did what it was asked.
    OK = 0
    #: Anything else went wrong (the message says what).
    ERROR = 1
    #: The command line is wrong: an unknown option, a bad cron expression, time zone,
    #: store URL or ``module:scheduler`` reference.
    USAGE = 2
    #: No task (or run) with the id given.
    NOT_FOUND = 3
    #: The store cannot be reached: the server is down, the directory or SQLite file
    #: does not exist.
    STORE_UNAVAILABLE = 4
    #: ``tasks run --wait``: the run ended without success (error, timeout, cancelled,
    #: missed, refused for ``max_instances``).
    RUN_FAILED = 5
    #: ``tasks run --wait``: the run had not ended when the wait was over.
    RUN_UNFINISHED = 6
    #: Interrupted by Ctrl-C (as a shell reports SIGINT: 128 + 2).
    INTERRUPTED = 130


class CommandFailed(Exception):
    """A command's own failure, with the status to exit with."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


class RunNotFound(CommandFailed):
    """No run with the id given."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}", ExitCode.NOT_FOUND)


def exit_code_for(error: BaseException) -> ExitCode:
    """The status a failure exits with (see :class:`ExitCode`)."""
    if isinstance(error, CommandFailed):
        return error.code
    if isinstance(error, TaskLookupError):
        return ExitCode.NOT_FOUND
    if isinstance(error, StoreUnavailableError):
        return ExitCode.STORE_UNAVAILABLE
    if isinstance(error, MissingDependencyError):
        return ExitCode.ERROR  # the install lacks an extra: not the command line's fault
    if isinstance(error, ConfigurationError | ReferenceResolutionError):
        return ExitCode.USAGE
    from sqlalchemy.exc import ArgumentError  # (a core dependency)

    if isinstance(error, ArgumentError):  # a malformed URL, an unknown dialect
        return ExitCode.USAGE
    return ExitCode.ERROR


def one_line(error: BaseException) -> str:
    """The error as one line: its message with line breaks folded (a driver's message
    often spans lines), prefixed by its type unless it is tickwork's own."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, CommandFailed) or type(error).__module__.startswith("tickwork."):
        return text
    return f"{type(error).__name__}: {text}"
