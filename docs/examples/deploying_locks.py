"""Deploying: which lock_path placeholder makes which processes share one lock.

Processes share a store's lock when their filled-in lock paths are equal. This example
fills the templates in child processes started in different ways and compares.
"""

from __future__ import annotations

import subprocess
import sys

from tickwork import AsyncIOScheduler

# {store} always: each store gets a lock of its own.
# Several processes started independently on one host (two systemd units, two
# terminals, a cron job next to a web server): a fixed path.
scheduler = AsyncIOScheduler(lock_path="/run/myapp/tickwork-{store}.lock")
# Workers forked by one master (gunicorn -w 4, uvicorn --workers 4): {ppid}, the master,
# keeps two deployments of the app on one host apart.
scheduler = AsyncIOScheduler(lock_path="/run/myapp/tickwork-{ppid}-{store}.lock")
# {pgrp} only for processes started together in one process group.

FILL = "from tickwork.locks import format_lock_path as f; print(f('{template}', 'default'))"


def lock_path_of_child(template: str, new_session: bool) -> str:
    """The lock path a child process computes; ``new_session`` starts it the way a
    terminal's job control, systemd or a container runtime does: in a process group
    (and session) of its own."""
    result = subprocess.run(
        [sys.executable, "-c", FILL.format(template=template)],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=new_session,
    )
    return result.stdout.strip()


def shared(template: str, new_session: bool) -> bool:
    """Would two such children share the lock?"""
    first, second = (lock_path_of_child(template, new_session) for _ in range(2))
    return first == second


# Children of one parent (like workers of one master) share {ppid} and {pgrp}.
assert shared("/tmp/app-{ppid}-{store}.lock", new_session=False)
assert shared("/tmp/app-{pgrp}-{store}.lock", new_session=False)
# Processes launched separately each get a process group of their own: {pgrp} differs,
# so they would not share the lock and would both run every task.
assert not shared("/tmp/app-{pgrp}-{store}.lock", new_session=True)
# A fixed path is shared however the processes were started.
assert shared("/tmp/app-{store}.lock", new_session=True)
