"""A module the security tests must never see imported: a forged record names it.

Importing it leaves a trace in ``sys.modules`` (what the tests check) and would run
:func:`run` if a record naming it were ever loaded and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

IMPORTED = True


def run(marker: str, *args: Any) -> None:
    """Leave a marker file: proof the forged task ran."""
    Path(marker).write_text("ran")
