"""``tickwork fleet``: the members seen at work and the leader, as the store records its
term, against every kind of store the command administers."""

from __future__ import annotations

import uuid

from cli_helpers import CALLS, tickwork, wait_for
from cli_stores import StoreLocation


def test_fleet_names_the_leader_and_the_members_at_work(location: StoreLocation) -> None:
    tag = uuid.uuid4().hex
    worker = location.worker()
    worker.add_task("cli_helpers:record_call", "interval", hours=1, args=[tag], id="hourly")
    worker.start()
    try:
        elects = location.url.startswith(("sqlite", "postgresql", "redis"))
        if elects:
            wait_for(lambda: worker.is_leader)  # (the leadership thread elects at start)
        ran = tickwork("tasks", "run", "hourly", *location.args, "--wait", "30")
        assert ran.code == 0, ran
        assert CALLS.count(tag) == 1

        shown = tickwork("fleet", *location.args, "--json")
        assert shown.code == 0, shown
        data = shown.json()
        member = data["members"][0]
        assert (member["identity"], member["recent_runs"], member["running"]) == (
            "cli-worker",
            1,
            0,
        )
        assert member["is_this_process"] is False  # (the command's own scheduler is an admin)
        text = tickwork("fleet", *location.args)
        assert text.code == 0, text
        first, header, row = text.out.splitlines()
        assert header.split() == [
            "SCHEDULER",
            "RUNNING",
            "RECENT",
            "RUNS",
            "LAST",
            "SEEN",
            "AT",
            "WORK",
        ]
        if elects:
            generation = worker.leader_generation
            assert data["leader"]["identity"] == "cli-worker"
            assert data["leader"]["generation"] == generation
            assert 0 < data["leader"]["expires_in"] <= 60
            assert (member["is_leader"], member["leader_generation"]) == (True, generation)
            assert first.startswith(f"leader: cli-worker (term {generation}, lease ends in ")
            assert row.startswith("cli-worker (leader)  0        1 ")
        else:  # a file store elects nobody (lock_path leadership is the host's, not the store's)
            assert data["leader"] is None
            assert member["is_leader"] is False
            assert first == "leader: none (no term runs, or no store of this target elects one)"
            assert row.startswith("cli-worker  0        1 ")
    finally:
        worker.shutdown()

    # The worker resigned at shutdown: nobody leads, and it is still listed from its runs.
    after = tickwork("fleet", *location.args, "--json")
    assert after.code == 0, after
    assert after.json()["leader"] is None
    assert [m["identity"] for m in after.json()["members"]] == ["cli-worker"]
