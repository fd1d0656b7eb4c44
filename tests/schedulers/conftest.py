"""One fixture, four ways to run a scheduler: every scheduler test runs against each.

* ``asyncio``: AsyncIOScheduler attached to the test's running loop;
* ``asyncio-thread``: AsyncIOScheduler on a loop of its own in a thread;
* ``native``: NativeAsyncIOScheduler (``await start()`` / ``await shutdown()``);
* ``background``: BackgroundScheduler (a thread, a thread pool).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from scheduler_helpers import KINDS, Harness


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = Harness(request.param)
    yield h
    for scheduler in h.schedulers:
        if scheduler.running:
            await h.shutdown(scheduler, wait=False)
