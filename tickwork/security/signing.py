"""Signed records: an HMAC-SHA256 over the exact bytes a store keeps.

A signed record is ``b"TWS1 " + key id + b" " + hex MAC + b"\\n" + payload``. The key
id (16 hex digits derived from the key, so nobody has to name keys) says which key
signed it: a scheduler given ``signing_key=new, old_signing_keys=[old]`` verifies both
and writes with ``new`` only, so keys rotate without stopping old tasks;
``resign_tasks()`` then rewrites every record with the new key and the old one can go.

Why a MAC over the stored bytes rather than over a decoded structure: verification
must happen before any decoding, because decoding is where imports happen (a task's
function, a trigger class, a pickled global). Nothing of an unverified record is read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from tickwork.exceptions import ConfigurationError, RecordSignatureError

__all__ = ["MAGIC", "Signer", "check_key", "key_id"]

MAGIC = b"TWS1 "
_ID_LENGTH = 16
_MAC_LENGTH = 64  # hex digits of SHA-256
_HEADER_LENGTH = len(MAGIC) + _ID_LENGTH + 1 + _MAC_LENGTH + 1
#: Domain separation: a key also used elsewhere yields unrelated MACs here.
_CONTEXT = b"tickwork record v1\x00"


def check_key(name: str, key: object, minimum: int = 16) -> bytes:
    """Return ``key`` as bytes, or raise ``ConfigurationError`` naming the keyword.

    A ``str`` is taken as UTF-8 (a passphrase from a secret store); fewer than
    ``minimum`` bytes is refused: a short key can be guessed offline from one record.
    """
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes | bytearray):
        raise ConfigurationError(f"{name} must be bytes or str, got {type(key).__name__}")
    if len(key) < minimum:
        raise ConfigurationError(
            f"{name} must be at least {minimum} bytes long, got {len(key)}; "
            "use secrets.token_bytes(32)"
        )
    return bytes(key)


def key_id(key: bytes) -> str:
    """The 16-hex-digit id of ``key`` written in each record (it reveals nothing of it)."""
    return hashlib.sha256(b"tickwork key id\x00" + key).hexdigest()[:_ID_LENGTH]


class Signer:
    """Signs with the current key; verifies with it or any of the old ones."""

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self._key = key
        self._id = key_id(key).encode()
        self._keys = {key_id(k).encode(): k for k in (*old_keys, key)}

    @property
    def current_id(self) -> str:
        """The id of the key new records are signed with."""
        return self._id.decode()

    def sign(self, payload: bytes) -> bytes:
        """Return ``payload`` with its signature header in front."""
        mac = hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).hexdigest().encode()
        return b"".join((MAGIC, self._id, b" ", mac, b"\n", payload))

    def verify(self, data: bytes) -> bytes:
        """Return the payload of a record signed with a known key, or raise
        ``RecordSignatureError`` saying what is wrong (never what the MAC should be)."""
        data = bytes(data)
        if not data.startswith(MAGIC) or len(data) < _HEADER_LENGTH:
            raise RecordSignatureError(
                "the record is not signed (signing is on: every record must carry the "
                "signature of a signing key; an unsigned one was not written by this "
                "fleet, or before signing was switched on: see resign_tasks())"
            )
        kid = data[len(MAGIC) : len(MAGIC) + _ID_LENGTH]
        mac = data[len(MAGIC) + _ID_LENGTH + 1 : _HEADER_LENGTH - 1]
        payload = data[_HEADER_LENGTH:]
        key = self._keys.get(kid)
        if key is None:
            raise RecordSignatureError(
                f"the record is signed with key id {kid.decode(errors='replace')!r}, which "
                "is neither signing_key nor one of old_signing_keys"
            )
        expected = hmac.new(key, _CONTEXT + payload, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, mac):
            raise RecordSignatureError(
                "the record's signature does not match its contents (it was changed or "
                "forged after it was written)"
            )
        return payload

    def is_current(self, data: bytes) -> bool:
        """True when ``data`` is signed with the current key (no re-signing needed)."""
        return bytes(data[len(MAGIC) : len(MAGIC) + _ID_LENGTH]) == self._id
