"""Every Python block of docs/triggers.md runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tickwork.triggers import BaseTrigger, create_trigger

PAGE = Path(__file__).resolve().parents[2] / "docs" / "triggers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


class RecordingScheduler:
    """Stands in for a scheduler: builds the trigger ``add_task`` would build."""

    def __init__(self) -> None:
        self.triggers: list[BaseTrigger] = []

    def add_task(self, fn: Any, trigger: str | BaseTrigger, **trigger_args: Any) -> None:
        built = create_trigger(trigger, **trigger_args) if isinstance(trigger, str) else trigger
        self.triggers.append(built)


def job() -> None:
    """The task the examples schedule."""


def test_the_page_has_code() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_block_runs(code: str) -> None:
    scheduler = RecordingScheduler()
    namespace: dict[str, Any] = {"scheduler": scheduler, "job": job, "__name__": "docs_block"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    if "scheduler.add_task" in code:
        assert scheduler.triggers
