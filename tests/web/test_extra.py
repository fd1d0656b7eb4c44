"""Without the ``web`` extra, ``tickwork`` imports as before and ``tickwork.web`` says
what to install."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["starlette"] = None  # as if not installed
sys.modules["jinja2"] = None
import tickwork, tickwork.admin, tickwork.schedulers
from tickwork.schedulers import BackgroundScheduler
try:
    BackgroundScheduler().admin_app(token="admin-token-0001")
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


def test_without_the_extra_the_core_imports_and_the_error_names_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == (
        "MissingDependencyError tickwork.web (the admin app) needs the module 'starlette', "
        "which is not installed: pip install 'tickwork[web]'"
    ), result.stderr
