"""Task records encrypted at rest with AES-256-GCM (the ``tickwork[crypto]`` extra).

An encrypted record is ``b"TWE1 " + key id + b" " + 12-byte nonce + ciphertext``; the
key id (as in :mod:`~tickwork.security.signing`) picks the key among ``encryption_key``
and ``old_encryption_keys``. The whole serialized record is encrypted, so ``args`` and
``kwargs`` (and everything else in it) are unreadable in a dump; the columns a store
queries by (id, next run time) stay in clear, as they must.

GCM is authenticated: a changed ciphertext fails to decrypt, so encryption alone also
stops forged records; signing stays separate because it is cheaper and needs no extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tickwork.exceptions import ConfigurationError, MissingDependencyError, RecordSignatureError
from tickwork.security.signing import key_id

__all__ = ["MAGIC", "Encrypter"]

MAGIC = b"TWE1 "
_ID_END = len(MAGIC) + 16
_NONCE_LENGTH = 12


def _aead(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise MissingDependencyError(
            "cryptography", "encryption_key", "pip install 'tickwork[crypto]'"
        ) from None
    if len(key) != 32:
        raise ConfigurationError(
            f"an encryption key must be exactly 32 bytes (AES-256), got {len(key)}; "
            "use secrets.token_bytes(32)"
        )
    return AESGCM(key)


class Encrypter:
    """Encrypts with the current key; decrypts with it or any old one."""

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self._id = key_id(key).encode()
        self._aead = _aead(key)
        self._keys = {key_id(k).encode(): _aead(k) for k in (*old_keys, key)}

    def encrypt(self, payload: bytes) -> bytes:
        """Return ``payload`` encrypted under the current key, header in front."""
        nonce = os.urandom(_NONCE_LENGTH)
        sealed: bytes = self._aead.encrypt(nonce, payload, MAGIC + self._id)
        return b"".join((MAGIC, self._id, b" ", nonce, sealed))

    def decrypt(self, data: bytes) -> bytes:
        """Return the plaintext, or raise ``RecordSignatureError`` (not encrypted, an
        unknown key, or a ciphertext that fails authentication)."""
        from cryptography.exceptions import InvalidTag

        data = bytes(data)
        if not data.startswith(MAGIC) or len(data) < _ID_END + 1 + _NONCE_LENGTH:
            raise RecordSignatureError(
                "the record is not encrypted (encryption is on: every record must be "
                "encrypted with encryption_key; see resign_tasks())"
            )
        kid = data[len(MAGIC) : _ID_END]
        aead = self._keys.get(kid)
        if aead is None:
            raise RecordSignatureError(
                f"the record is encrypted with key id {kid.decode(errors='replace')!r}, "
                "which is neither encryption_key nor one of old_encryption_keys"
            )
        nonce = data[_ID_END + 1 : _ID_END + 1 + _NONCE_LENGTH]
        try:
            plain: bytes = aead.decrypt(nonce, data[_ID_END + 1 + _NONCE_LENGTH :], MAGIC + kid)
        except InvalidTag:
            raise RecordSignatureError(
                "the encrypted record fails authentication (changed or forged)"
            ) from None
        return plain
