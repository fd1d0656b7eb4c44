"""What a scheduler's security keywords amount to, and how they reach its stores.

:class:`SecurityPolicy` is built once from ``signing_key``, ``old_signing_keys``,
``encryption_key``, ``old_encryption_keys`` and ``allowed_modules``. Each store added
to the scheduler gets a :class:`~tickwork.security.serializer.SecureSerializer` around
its own serializer (a memory store has none and needs none: nothing is read back from
outside the process), so tasks, pending retries and anything else a store writes
through its serializer are signed and checked the same way on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tickwork.exceptions import ConfigurationError, SerializationError
from tickwork.security.encryption import Encrypter
from tickwork.security.modules import ModulePolicy
from tickwork.security.serializer import SecureSerializer
from tickwork.security.signing import Signer, check_key
from tickwork.tasks import Task

__all__ = ["SecurityPolicy"]

#: Reports a refused record: (store alias, task id if readable, the error).
Report = Callable[[str, str | None, SerializationError], None]


def _keys(name: str, keys: Iterable[Any] | None, minimum: int) -> list[bytes]:
    if keys is None:
        return []
    if isinstance(keys, str | bytes | bytearray):
        raise ConfigurationError(
            f"{name} must be a list of keys, got a single {type(keys).__name__}; "
            f"write {name}=[old_key]"
        )
    return [check_key(f"{name}[{i}]", key, minimum) for i, key in enumerate(keys)]


class SecurityPolicy:
    """The signer, encrypter and module policy a scheduler applies to its stores."""

    def __init__(
        self,
        signing_key: bytes | str | None = None,
        old_signing_keys: Iterable[bytes | str] | None = None,
        encryption_key: bytes | None = None,
        old_encryption_keys: Iterable[bytes] | None = None,
        allowed_modules: Iterable[str] | None = None,
    ) -> None:
        old_signing = _keys("old_signing_keys", old_signing_keys, 16)
        if old_signing and signing_key is None:
            raise ConfigurationError("old_signing_keys needs signing_key (the key to write with)")
        self.signer = (
            None
            if signing_key is None
            else Signer(check_key("signing_key", signing_key), old_signing)
        )
        old_encryption = _keys("old_encryption_keys", old_encryption_keys, 32)
        if old_encryption and encryption_key is None:
            raise ConfigurationError("old_encryption_keys needs encryption_key")
        self.encrypter = (
            None
            if encryption_key is None
            else Encrypter(check_key("encryption_key", encryption_key, 32), old_encryption)
        )
        self.modules = None if allowed_modules is None else ModulePolicy(allowed_modules)

    @property
    def active(self) -> bool:
        """True when any defence is switched on."""
        return not (self.signer is None and self.encrypter is None and self.modules is None)

    def check_task(self, task: Task) -> None:
        """Refuse (``ModuleNotAllowedError``) a task whose references are not allowed."""
        if self.modules is not None:
            self.modules.check_task(task)

    def protect(self, store: Any, alias: str, report: Report) -> None:
        """Give ``store`` a secure serializer around its own (no-op for a store without
        a serializer, and for one protected already: its inner serializer is reused)."""
        inner = getattr(store, "serializer", None)
        if inner is None or not self.active:
            return
        if isinstance(inner, SecureSerializer):
            inner = inner.inner
        secure = SecureSerializer(inner, self.signer, self.encrypter, self.modules)
        secure.on_refused = lambda task_id, exc: report(alias, task_id, exc)
        store._install_serializer(secure)
        if store.serializer is not secure:  # (a read-only property, say): never silently
            raise ConfigurationError(
                f"store {alias!r} ({type(store).__name__}) did not take the signing/"
                "encryption serializer: its records would be neither signed nor checked; "
                "give it a plain 'serializer' attribute or override _install_serializer"
            )

    @staticmethod
    def resign(store: Any) -> int:
        """Rewrite every task of ``store`` that loads (with the current or an old key)
        so it is signed and encrypted with the current keys; return how many.

        Records that do not load (forged, or signed with a key no longer listed) are
        left as they are, set aside.
        """
        if not isinstance(getattr(store, "serializer", None), SecureSerializer):
            return 0
        count = 0
        for task in store.get_all_tasks():
            store.update_task(task)
            count += 1
        return count
