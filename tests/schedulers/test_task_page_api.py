"""``scheduler.get_task_page``: pages of ``get_tasks`` before start (pending tasks) and
after (asked of the store), the same either way."""

from __future__ import annotations

from pathlib import Path

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url


def job() -> None:
    pass


def test_pages_before_and_after_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    scheduler = BackgroundScheduler(stores={"default": store_from_url(url)})
    for index in range(12):
        scheduler.add_task(f"{__name__}:job", "interval", minutes=index + 1, id=f"job-{index:02d}")
    before, total = scheduler.get_task_page("job-0", offset=2, limit=3)
    assert total == 10
    assert [task.id for task in before] == ["job-02", "job-03", "job-04"]
    scheduler.start(paused=True)
    try:
        scheduler.pause_task("job-05")
        after, total = scheduler.get_task_page("JOB-0", offset=2, limit=3)
        assert total == 10
        assert [task.id for task in after] == ["job-02", "job-03", "job-04"]
        paused, count = scheduler.get_task_page(paused=True)
        assert ([task.id for task in paused], count) == (["job-05"], 1)
        scheduler.pause_task("job-00")  # a task the page returns is bound: it can act
        (first,), _ = scheduler.get_task_page(paused=False, limit=1)
        assert first.id == "job-01"
    finally:
        scheduler.shutdown()
