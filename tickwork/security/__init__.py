"""Defences for stores another party may write to (see ``docs/security.md``).

* :mod:`~tickwork.security.signing`: an HMAC on every record a store writes, so a record
  forged in the table, the directory or the Redis hash is set aside, never loaded.
* :mod:`~tickwork.security.encryption`: task records encrypted at rest (AES-GCM, the
  ``tickwork[crypto]`` extra), so a database dump shows no arguments.
* :mod:`~tickwork.security.modules`: ``allowed_modules``, checked before any import a
  record asks for (task functions, trigger and ``retry_on`` classes, pickled globals).
* :mod:`~tickwork.security.files`: private files (no symlink following, no foreign or
  world-writable directories).

The scheduler keywords ``signing_key``, ``old_signing_keys``, ``encryption_key``,
``old_encryption_keys`` and ``allowed_modules`` switch them on; this package holds no
scheduler code (it must not import it: see ``design-core.md``).
"""

from __future__ import annotations

from tickwork.security.files import check_private_directory, open_no_follow
from tickwork.security.modules import ModulePolicy
from tickwork.security.signing import Signer, key_id

__all__ = [
    "ModulePolicy",
    "Signer",
    "check_private_directory",
    "key_id",
    "open_no_follow",
]
