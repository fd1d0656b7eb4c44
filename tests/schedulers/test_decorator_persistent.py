"""The decorator form works with a persistent store: the decorated function's name is not
bound yet when the decorator runs, so its reference can't be imported at that moment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_decorator_with_a_sqlite_store(tmp_path: Path) -> None:
    module = tmp_path / "decorated_app.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from tickwork import BackgroundScheduler

            scheduler = BackgroundScheduler(
                stores={{"default": {{"type": "sqlalchemy", "url": "sqlite:///{tmp_path / "t.sqlite"}"}}}}
            )
            scheduler.start()

            @scheduler.add_task(trigger="interval", hours=1, id="hourly")
            def hourly() -> None:
                pass

            stored = scheduler.get_task("hourly")
            assert stored is not None and stored.fn is hourly, stored
            scheduler.shutdown()
            print("ok")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-c", "import decorated_app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
