"""The command administers a signed and encrypted fleet's store with the keys from the
environment (TICKWORK_SIGNING_KEY / TICKWORK_ENCRYPTION_KEY), and without them shows
none of its tasks rather than trusting them."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from cli_helpers import tickwork

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url

pytest.importorskip("cryptography")

SIGNING = "a signing passphrase of the fleet"
ENCRYPTION = secrets.token_bytes(32)


@pytest.fixture
def signed_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'signed.db'}"
    seed = BackgroundScheduler(
        stores={"default": store_from_url(url)}, signing_key=SIGNING, encryption_key=ENCRYPTION
    )
    seed.add_task("cli_helpers:record_call", "interval", hours=1, args=["x"], id="secret-job")
    seed.start(paused=True)
    seed.shutdown()
    return url


def test_the_keys_from_the_environment_open_the_store(
    signed_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKWORK_SIGNING_KEY", SIGNING)
    monkeypatch.setenv("TICKWORK_ENCRYPTION_KEY", "base64:" + base64.b64encode(ENCRYPTION).decode())
    listed = tickwork("tasks", "list", "--store", signed_store, "--json")
    assert listed.code == 0, listed
    assert [task["id"] for task in listed.json()] == ["secret-job"]


def test_without_the_keys_no_task_is_trusted(
    signed_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TICKWORK_SIGNING_KEY", raising=False)
    monkeypatch.delenv("TICKWORK_ENCRYPTION_KEY", raising=False)
    listed = tickwork("tasks", "list", "--store", signed_store, "--json")
    assert listed.code == 0, listed
    assert listed.json() == []
    assert "the record is signed and this scheduler has no signing_key" in listed.err


def test_a_bad_base64_key_is_one_line(signed_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWORK_ENCRYPTION_KEY", "base64:not base64!")
    failed = tickwork("tasks", "list", "--store", signed_store)
    assert failed.code != 0
    assert "TICKWORK_ENCRYPTION_KEY is not valid base64" in failed.error_line()
