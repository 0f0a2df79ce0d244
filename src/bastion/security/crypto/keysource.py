"""What a key source offers: data keys wrapped under versioned per-app KEKs, and the
operator's work on those versions (rotate, retire, destroy, key ages, backup keys).

``LocalKeyring`` (a sealed file) and ``VaultTransit`` (HashiCorp Vault) implement it;
``app.key_source`` picks one from ``encryption.key_source``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What an operator may know about the keys: versions and ages, never material."""

    primary: int
    min_decryption_version: int
    versions: tuple[tuple[int, dt.datetime], ...]
    backup_primary: int

    def primary_age(self, now: dt.datetime) -> dt.timedelta:
        """How long the key used for new writes has been in use."""
        created = dict(self.versions)[self.primary]
        return now - created


@dataclass(frozen=True, slots=True)
class BackupKey:
    """The key one backup file is sealed under.

    ``wrapped`` is what the backup header must carry for the key source to give the key
    back (Vault: the Transit ciphertext of a fresh data key); ``None`` when the source
    keeps the key itself and the version alone names it (local keyring).
    """

    version: int
    key: bytes = field(repr=False)
    wrapped: str | None = None


class KeySource(Protocol):
    """Wraps and unwraps data keys under an app's versioned KEKs (local file or Vault)."""

    name: str
    """``local`` or ``vault``: a bounded metric label and what ``keys status`` prints."""

    remote: bool
    """True when calls do network I/O: async callers then run them in a worker thread."""

    def wrap(self, app_id: str, dek: bytes, aad: bytes) -> tuple[int, str]:
        """Seal ``dek`` under the app's newest KEK; return (version, wrapped)."""
        ...

    def unwrap(self, app_id: str, version: int, wrapped: str, aad: bytes) -> bytes:
        """Open a wrapped DEK; raises when the version is retired or the input tampered."""
        ...

    def record_destroyed(self, key_ids: list[str]) -> None:
        """Remember shredded data keys outside the database (and its backups)."""
        ...

    def is_destroyed(self, key_id: str) -> bool:
        """Whether a data key was shredded."""
        ...


class ManagedKeySource(KeySource, Protocol):
    """A key source with its lifecycle operations, as the CLI and backups use it."""

    def status(self) -> KeyStatus:
        """Versions, ages and thresholds (no key material)."""
        ...

    def rotate(self, now: dt.datetime) -> int:
        """Add a KEK version that new wraps use; return its number."""
        ...

    def rotate_backup(self, now: dt.datetime) -> int:
        """Add a backup key version that new backups use; return its number."""
        ...

    def set_min_decryption_version(self, version: int) -> None:
        """Refuse to unwrap under versions below ``version`` from now on."""
        ...

    def destroy_versions_below(self, version: int) -> list[int]:
        """Erase the material of retired KEK versions below ``version``; return them."""
        ...

    def new_backup_key(self, backup_id: str) -> BackupKey:
        """A key for a new backup file, bound to its id."""
        ...

    def open_backup_key(self, version: int, wrapped: str | None, backup_id: str) -> bytes:
        """The key of an existing backup, from what its header says."""
        ...


async def call(source: KeySource, operation: Callable[..., T], *args: object) -> T:
    """Run one key-source operation; in a worker thread when it does network I/O, so a
    slow Vault never stalls the event loop."""
    if source.remote:
        return await asyncio.to_thread(operation, *args)
    return operation(*args)
