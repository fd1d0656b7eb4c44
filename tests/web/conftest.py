"""The admin app tests need the web extra: without it they are skipped."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
