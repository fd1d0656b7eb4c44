"""The exit statuses scripts branch on (``tickwork.cli.ExitCode``), each failure one line
on stderr and nothing on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import tickwork

from tickwork import __version__ as tickwork_version
from tickwork.cli import ExitCode, main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["tasks", "show", "--store", "x"], "the following arguments are required: ID"),
        (["tasks", "list", "--store", "x", "--app", "a:b"], "not allowed with argument"),
        (["runs", "--outcome", "bad", "--store", "x"], "invalid choice: 'bad'"),
        (["preview", "t", "-n", "0", "--store", "x"], "expected a whole number >= 1, got '0'"),
        (["runs", "--since", "yesterday", "--store", "x"], "is not an ISO 8601 time"),
    ],
)
def test_command_line_mistakes_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == ExitCode.USAGE == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("tickwork")
    assert message in captured.err
    assert captured.err.endswith(" --help`)\n")
    assert captured.err.count("\n") == 1


def test_the_codes_are_documented_numbers() -> None:
    assert [(code.name, int(code)) for code in ExitCode] == [
        ("OK", 0),
        ("ERROR", 1),
        ("USAGE", 2),
        ("NOT_FOUND", 3),
        ("STORE_UNAVAILABLE", 4),
        ("RUN_FAILED", 5),
        ("RUN_UNFINISHED", 6),
        ("INTERRUPTED", 130),
    ]


def _unreachable(kind: str, tmp_path: Path) -> tuple[list[str], int, str]:
    if kind == "postgresql":
        return (
            ["--store", "postgresql+psycopg://postgres@127.0.0.1:1/test"],
            4,
            "Connection refused",
        )
    if kind == "redis":
        return ["--store", "redis://127.0.0.1:1/0"], 4, "Connection refused"
    if kind == "directory":
        missing = tmp_path / "typo"
        return ["--store", str(missing)], 4, f"no file store at '{missing}': no such directory"
    if kind == "sqlite":
        return ["--store", f"sqlite:///{tmp_path}/typo.db"], 4, "no SQLite database at"
    if kind == "memory-sqlite":
        return ["--store", "sqlite://"], 2, "in-memory SQLite database"
    if kind == "memory":
        return ["--store", "memory://"], 2, "a memory store lives in one process"
    if kind == "dialect":
        return ["--store", "nosuch://host/db"], 2, "Can't load plugin: sqlalchemy.dialects:nosuch"
    return [], 2, "one of --store URL or --app module:scheduler is required"


@pytest.mark.parametrize(
    "kind",
    ["postgresql", "redis", "directory", "sqlite", "memory-sqlite", "memory", "dialect", "none"],
)
def test_stores_that_cannot_be_used(kind: str, tmp_path: Path) -> None:
    args, code, message = _unreachable(kind, tmp_path)
    result = tickwork("tasks", "list", *args, "--json")
    assert (result.code, result.out) == (code, ""), result
    assert message in result.error_line()
    assert not (tmp_path / "typo").exists()  # a mistyped path creates nothing
    assert not (tmp_path / "typo.db").exists()


def test_the_console_script() -> None:
    script = Path(sys.executable).with_name("tickwork")
    if not script.exists():
        pytest.skip(f"no console script at {script} (tickwork not installed in this venv)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"tickwork {tickwork_version}\n")
