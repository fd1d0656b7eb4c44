"""Signing and encryption of records, byte by byte (tickwork/security/signing.py,
encryption.py, policy.py)."""

from __future__ import annotations

import pytest

from tickwork.exceptions import ConfigurationError, RecordSignatureError
from tickwork.schedulers import BackgroundScheduler
from tickwork.security.signing import Signer, key_id

KEY = b"s" * 32


def test_a_signed_record_verifies_and_gives_back_its_payload() -> None:
    signer = Signer(KEY)
    data = signer.sign(b'{"task":1}')
    assert data.startswith(b"TWS1 " + key_id(KEY).encode() + b" ")
    assert signer.verify(data) == b'{"task":1}'


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data.split(b"\n", 1)[1], "not signed"),
        (lambda data: data[:-1] + b"2", "does not match"),
        (lambda data: data.replace(b"TWS1 ", b"TWS1 0", 1)[:-1], "neither signing_key"),
        (lambda data: b"", "not signed"),
    ],
    ids=["header removed", "payload changed", "key id changed", "empty"],
)
def test_a_changed_record_is_refused(change: object, message: str) -> None:
    signer = Signer(KEY)
    data = signer.sign(b'{"task":1}')
    with pytest.raises(RecordSignatureError, match=message):
        signer.verify(change(data))  # type: ignore[operator]


def test_old_keys_verify_but_only_the_current_key_signs() -> None:
    old = Signer(b"o" * 32)
    rotated = Signer(KEY, [b"o" * 32])
    assert rotated.verify(old.sign(b"x")) == b"x"
    assert not rotated.is_current(old.sign(b"x"))
    assert rotated.is_current(rotated.sign(b"x"))
    with pytest.raises(RecordSignatureError):
        Signer(KEY).verify(old.sign(b"x"))


def test_encryption_round_trips_and_hides_the_payload() -> None:
    pytest.importorskip("cryptography")
    from tickwork.security.encryption import Encrypter

    old, key = b"o" * 32, b"e" * 32
    sealed = Encrypter(old).encrypt(b"secret args")
    assert b"secret" not in sealed
    assert Encrypter(key, [old]).decrypt(sealed) == b"secret args"
    with pytest.raises(RecordSignatureError, match="neither encryption_key"):
        Encrypter(key).decrypt(sealed)
    with pytest.raises(RecordSignatureError, match="fails authentication"):
        Encrypter(old).decrypt(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(RecordSignatureError, match="not encrypted"):
        Encrypter(old).decrypt(b'{"plain": true}')


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signing_key": b"short"}, "signing_key must be at least 16 bytes"),
        ({"signing_key": 5}, "signing_key must be bytes or str, got int"),
        ({"signing_key": KEY, "old_signing_keys": b"o" * 32}, "old_signing_keys must be a list"),
        ({"old_signing_keys": [b"o" * 32]}, "old_signing_keys needs signing_key"),
        ({"encryption_key": b"e" * 16}, "encryption_key must be at least 32 bytes"),
        ({"allowed_modules": "myapp"}, r"allowed_modules=\('myapp',\)"),
        ({"allowed_modules": ["myapp:run"]}, "not a module name"),
    ],
)
def test_bad_security_keywords_fail_at_construction_by_name(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BackgroundScheduler(**options)  # type: ignore[arg-type]


def test_a_store_whose_serializer_cannot_be_replaced_is_refused_by_name() -> None:
    from tickwork.serializers import JSONSerializer
    from tickwork.stores.memory import MemoryStore

    class Stubborn(MemoryStore):
        @property
        def serializer(self) -> JSONSerializer:
            return JSONSerializer()

    with pytest.raises(ConfigurationError, match=r"store 'default' \(Stubborn\) did not take"):
        BackgroundScheduler(stores={"default": Stubborn()}, signing_key=KEY)
