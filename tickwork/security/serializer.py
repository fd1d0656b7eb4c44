"""The secure serializer: one wrapper that gives every persistent store signing,
encryption and the module check, whatever its backend.

Writing: ``inner.serialize`` -> encrypt (if a key) -> sign (if a key). Reading runs the
same steps backwards, and the order is the point: the signature is checked first,
on the raw bytes, then the record is decrypted, and only then decoded, with the
module policy active so the decoder's imports are checked before they happen. A record
refused at any step raises :class:`~tickwork.exceptions.RecordSignatureError` or
``ModuleNotAllowedError`` inside a ``SerializationError``: the stores already set such
records aside (kept, logged once) and the task, the pending retry or the run it
describes never runs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable

from tickwork.exceptions import RecordSignatureError, SerializationError
from tickwork.security.encryption import Encrypter
from tickwork.security.modules import ModulePolicy
from tickwork.security.signing import MAGIC as SIGNED
from tickwork.security.signing import Signer
from tickwork.serializers.base import BaseSerializer
from tickwork.tasks import Task

__all__ = ["Refused", "SecureSerializer"]

#: Called once per refused record: (the task id when it can be read safely, the error).
Refused = Callable[[str | None, SerializationError], None]


class SecureSerializer(BaseSerializer):
    """Wraps a store's serializer (see the module docstring)."""

    def __init__(
        self,
        inner: BaseSerializer,
        signer: Signer | None = None,
        encrypter: Encrypter | None = None,
        modules: ModulePolicy | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.signer = signer
        self.encrypter = encrypter
        self.modules = modules
        self.on_refused: Refused | None = None
        self._refused: set[bytes] = set()
        self._lock = threading.Lock()

    def serialize(self, task: Task) -> bytes:
        """The inner serializer's bytes, encrypted and signed as configured."""
        if self.modules is not None:
            self.modules.check_task(task)
        data = self.inner.serialize(task)
        if self.encrypter is not None:
            data = self.encrypter.encrypt(data)
        if self.signer is not None:
            data = self.signer.sign(data)
        return data

    def check(self, task: Task) -> None:
        """The inner check, and the module policy (a task refused here is never written)."""
        if self.modules is not None:
            self.modules.check_task(task)
        self.inner.check(task)

    def deserialize(self, data: bytes) -> Task:
        """Verify, decrypt, then decode under the module policy; a refusal is reported
        once per distinct record through ``on_refused``."""
        try:
            payload = self.open(data)
            if self.modules is None:
                return self.inner.deserialize(payload)
            with self.modules.active():
                return self.inner.deserialize(payload)
        except SerializationError as exc:
            self._report(data, exc)
            raise

    def open(self, data: bytes) -> bytes:
        """The inner serializer's bytes of a record, after its signature is verified and
        it is decrypted (``RecordSignatureError`` otherwise)."""
        try:
            if self.signer is not None:
                data = self.signer.verify(data)
            if self.encrypter is not None:
                data = self.encrypter.decrypt(data)
        except RecordSignatureError as exc:
            raise RecordSignatureError(
                f"refused: {exc}; it is left in the store untouched, never loaded or run, "
                "so it can be examined and deleted by hand"
            ) from None
        return data

    def _report(self, data: bytes, exc: SerializationError) -> None:
        digest = hashlib.sha256(bytes(data)).digest()
        with self._lock:
            if digest in self._refused:
                return
            if len(self._refused) > 10_000:
                self._refused.clear()  # bounded: a flood of forgeries must not eat memory
            self._refused.add(digest)
        if self.on_refused is not None:
            self.on_refused(_peek_id(data), exc)

    def __repr__(self) -> str:
        return (
            f"SecureSerializer({self.inner!r}, signed={self.signer is not None}, "
            f"encrypted={self.encrypter is not None}, modules={self.modules!r})"
        )


def _peek_id(data: bytes) -> str | None:
    """The id a refused record claims, for the event: only plain JSON is parsed (that
    imports nothing); a pickle or an encrypted record is never touched."""
    payload = bytes(data)
    if payload.startswith(SIGNED):
        payload = payload.partition(b"\n")[2]
    if not payload.startswith(b"{"):
        return None
    try:
        task = json.loads(payload).get("task")
        task_id = task.get("id") if isinstance(task, dict) else None
    except (ValueError, AttributeError):
        return None
    return task_id if isinstance(task_id, str) else None
