"""The core's structure, checked: parts receive narrow interfaces, never the scheduler.

Only the scheduler variants (and the package's own ``__init__``) may import
:mod:`tickwork.schedulers.base`; every part of the core and everything outside
``tickwork/schedulers/`` reaches the scheduler through a Protocol (``ExecutorHost``,
``TaskOwner``) or the parts it was given.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tickwork

PACKAGE = Path(tickwork.__file__).parent

#: Modules that are the scheduler (the façade and its variants) or re-export it.
ALLOWED = {
    "tickwork/__init__.py",
    "tickwork/schedulers/__init__.py",
    "tickwork/schedulers/base.py",
    "tickwork/schedulers/asyncio.py",
    "tickwork/schedulers/background.py",
    # The ASGI wrapper receives the scheduler it wraps (its public lifecycle).
    "tickwork/schedulers/asgi.py",
}


def _imports_base(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tickwork.schedulers.base":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "tickwork.schedulers":
            if any(alias.name == "BaseScheduler" for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.Import) and any(
            alias.name == "tickwork.schedulers.base" for alias in node.names
        ):
            lines.append(node.lineno)
    return lines


def test_no_part_imports_the_scheduler_class() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        if name in ALLOWED:
            continue
        lines = _imports_base(path)
        if lines:
            offenders[name] = lines
    assert offenders == {}, f"modules importing BaseScheduler (even for typing): {offenders}"


def test_the_parts_reach_nothing_private_of_the_scheduler() -> None:
    # "scheduler._x" in a part would mean it holds the scheduler after all.
    for path in sorted((PACKAGE / "schedulers").glob("_*.py")):
        text = path.read_text()
        assert "scheduler._" not in text.replace("self._scheduler", ""), path.name
