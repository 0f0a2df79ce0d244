"""The local keyring: versioned root keys in one file, sealed under a master key.

``<data_dir>/keys/keyring.json`` (mode 0600) holds the key-encryption root keys (one
per version), the backup keys and the retirement threshold, all sealed with
AES-256-GCM under the **master key**. The master key comes from
``encryption.master_passphrase`` (scrypt, N=2^15, r=8, p=1, random salt kept in the
file), from ``encryption.master_key`` (32 random bytes, base64, e.g. an environment
secret), or — in development only — from a random ``master.key`` file made beside it.

Each app gets its own KEK per version: HKDF-SHA256(root_v, "bastion/kek|" + app_id).
``wrap`` seals a data key under the app's newest KEK; ``unwrap`` opens it under the
version it names, refusing versions below ``min_decryption_version``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.security.crypto import aead
from bastion.security.crypto.errors import KeyUnavailable
from bastion.security.crypto.keysource import BackupKey, KeyStatus

__all__ = ["FORMAT", "KeyStatus", "KeyVersion", "LocalKeyring", "MasterKey"]

FORMAT = "bastion-keyring/1"
_FILE_AAD = b"bastion/keyring/v1"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_PRIVATE = 0o600


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One version of a root key."""

    version: int
    key: bytes = field(repr=False)
    created_at: dt.datetime


@dataclass(slots=True)
class _Contents:
    kek: list[KeyVersion]
    backup: list[KeyVersion]
    min_decryption_version: int
    destroyed: set[str] = field(default_factory=set)

    def to_json(self) -> bytes:
        def versions(items: list[KeyVersion]) -> list[dict[str, Any]]:
            return [
                {"version": v.version, "key": _b64(v.key), "created_at": v.created_at.isoformat()}
                for v in items
            ]

        return json.dumps(
            {
                "kek": versions(self.kek),
                "backup": versions(self.backup),
                "min_decryption_version": self.min_decryption_version,
                "destroyed": sorted(self.destroyed),
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> _Contents:
        data = json.loads(raw)

        def versions(items: list[dict[str, Any]]) -> list[KeyVersion]:
            return [
                KeyVersion(
                    int(i["version"]), _unb64(i["key"]), dt.datetime.fromisoformat(i["created_at"])
                )
                for i in items
            ]

        return cls(
            versions(data["kek"]),
            versions(data["backup"]),
            int(data["min_decryption_version"]),
            set(data.get("destroyed", [])),
        )


class MasterKey:
    """Where the keyring's master key comes from."""

    def __init__(self, *, passphrase: str | None, raw_key: str | None, dev_key_file: Path) -> None:
        self._passphrase = passphrase
        self._raw = raw_key
        self._dev_file = dev_key_file

    def header(self) -> dict[str, Any]:
        """The KDF description stored in a new keyring file."""
        if self._passphrase is not None:
            return {"name": "scrypt", "salt": _b64(secrets.token_bytes(16)), **_SCRYPT}
        if self._raw is not None:
            return {"name": "raw"}
        return {"name": "file"}

    def key(self, kdf: dict[str, Any]) -> bytes:
        """The master key for a file whose header says ``kdf``."""
        name = kdf.get("name")
        if name == "scrypt" and self._passphrase is not None:
            salt = _unb64(kdf["salt"])
            return aead.derive_master_key(
                self._passphrase, salt, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
            )
        if name == "raw" and self._raw is not None:
            key = _unb64(self._raw)
            if len(key) != aead.KEY_BYTES:
                raise KeyUnavailable("encryption.master_key must be 32 bytes, base64")
            return key
        if name == "file":
            return self._dev_key()
        raise KeyUnavailable(f"the keyring is protected by {name!r}, which is not configured")

    def _dev_key(self) -> bytes:
        if not self._dev_file.exists():
            write_private(self._dev_file, _b64(aead.new_key()).encode())
        return _unb64(self._dev_file.read_text(encoding="ascii").strip())


def write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class LocalKeyring:
    """Root keys from the keyring file; reloads when another process changed it."""

    name = "local"
    remote = False

    def __init__(self, path: Path, master: MasterKey) -> None:
        self.path = path
        self._master = master
        self._contents: _Contents | None = None
        self._stamp: int | None = None
        # Per-app KEKs derived from the loaded roots; dropped whenever the file is reread.
        self._derived: dict[tuple[int, str], bytes] = {}

    # -- file ---------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the keyring file has been created."""
        return self.path.exists()

    def create(self, now: dt.datetime) -> bool:
        """Create the keyring with its first versions; False if it already existed."""
        with self._locked():
            if self.path.exists():
                return False
            first = _Contents(
                [KeyVersion(1, aead.new_key(), now)], [KeyVersion(1, aead.new_key(), now)], 1
            )
            self._save(first, self._master.header())
            return True

    def _load(self) -> _Contents:
        stamp = self.path.stat().st_mtime_ns if self.path.exists() else None
        if self._contents is not None and stamp == self._stamp:
            return self._contents
        if stamp is None:
            raise KeyUnavailable(f"no keyring at {self.path}: run `bastion init` first")
        document = json.loads(self.path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise KeyUnavailable("the keyring file has an unknown format")
        master = self._master.key(document["kdf"])
        try:
            raw = aead.unseal(master, _unb64(document["sealed"]), _FILE_AAD)
        except aead.InvalidCiphertext:
            raise KeyUnavailable(
                "the keyring cannot be opened with the configured master key"
            ) from None
        self._contents, self._stamp = _Contents.from_json(raw), stamp
        self._derived = {}
        return self._contents

    def _save(self, contents: _Contents, kdf: dict[str, Any]) -> None:
        master = self._master.key(kdf)
        sealed = aead.seal(master, contents.to_json(), _FILE_AAD)
        document = {"format": FORMAT, "kdf": kdf, "sealed": _b64(sealed)}
        write_private(self.path, json.dumps(document, indent=2).encode())
        self._contents, self._stamp = None, None
        self._derived = {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.path.parent / ".keyring.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _update(self, change: Any) -> None:
        with self._locked():
            document = json.loads(self.path.read_text(encoding="utf-8"))
            contents = self._load()
            change(contents)
            self._save(contents, document["kdf"])

    # -- operations -----------------------------------------------------------------
    def status(self) -> KeyStatus:
        """Versions, ages and thresholds (no key material)."""
        contents = self._load()
        return KeyStatus(
            primary=contents.kek[-1].version,
            min_decryption_version=contents.min_decryption_version,
            versions=tuple((v.version, v.created_at) for v in contents.kek),
            backup_primary=contents.backup[-1].version,
        )

    def rotate(self, now: dt.datetime) -> int:
        """Add a KEK version; new data keys are wrapped under it. Returns its number."""
        added: list[int] = []

        def change(contents: _Contents) -> None:
            version = contents.kek[-1].version + 1
            contents.kek.append(KeyVersion(version, aead.new_key(), now))
            added.append(version)

        self._update(change)
        return added[0]

    def rotate_backup(self, now: dt.datetime) -> int:
        """Add a backup key version; new backups use it."""
        added: list[int] = []

        def change(contents: _Contents) -> None:
            version = contents.backup[-1].version + 1
            contents.backup.append(KeyVersion(version, aead.new_key(), now))
            added.append(version)

        self._update(change)
        return added[0]

    def set_min_decryption_version(self, version: int) -> None:
        """Refuse to unwrap under versions below ``version`` from now on."""

        def change(contents: _Contents) -> None:
            if not 1 <= version <= contents.kek[-1].version:
                raise ValueError(f"no KEK version {version}")
            contents.min_decryption_version = version

        self._update(change)

    def destroy_versions_below(self, version: int) -> list[int]:
        """Erase the material of KEK versions below ``version`` (must already be retired).

        Every data key still wrapped only under them, in the database or in any backup, can
        never be unwrapped again.
        """
        removed: list[int] = []

        def change(contents: _Contents) -> None:
            if version > contents.min_decryption_version:
                raise ValueError("retire the versions (min_decryption_version) first")
            removed.extend(v.version for v in contents.kek if v.version < version)
            contents.kek = [v for v in contents.kek if v.version >= version]

        self._update(change)
        return removed

    def record_destroyed(self, key_ids: list[str]) -> None:
        """Remember shredded data keys: they are refused even if an old backup brings
        their wrapped material back."""
        if not key_ids:
            return

        def change(contents: _Contents) -> None:
            contents.destroyed.update(key_ids)

        self._update(change)

    def is_destroyed(self, key_id: str) -> bool:
        """Whether this data key was shredded."""
        return key_id in self._load().destroyed

    def kek(self, app_id: str, version: int | None = None) -> tuple[int, bytes]:
        """The app's KEK at ``version`` (default: the newest) and its version number."""
        contents = self._load()
        if version is None:
            root = contents.kek[-1]
        else:
            if version < contents.min_decryption_version:
                raise KeyUnavailable(f"KEK version {version} is retired")
            found = [v for v in contents.kek if v.version == version]
            if not found:
                raise KeyUnavailable(f"no KEK version {version}")
            root = found[0]
        derived = self._derived.get((root.version, app_id))
        if derived is None:
            derived = aead.derive_key(root.key, b"bastion/kek|" + app_id.encode())
            self._derived[(root.version, app_id)] = derived
        return root.version, derived

    def backup_key(self, version: int | None = None) -> tuple[int, bytes]:
        """A backup key (default: the newest); never used for anything else."""
        contents = self._load()
        items = (
            contents.backup
            if version is None
            else [v for v in contents.backup if v.version == version]
        )
        if not items:
            raise KeyUnavailable(f"no backup key version {version}")
        return items[-1].version, items[-1].key

    def new_backup_key(self, backup_id: str) -> BackupKey:
        """The newest backup key (each file derives its own key from it and its id)."""
        version, key = self.backup_key()
        return BackupKey(version, key)

    def open_backup_key(self, version: int, wrapped: str | None, backup_id: str) -> bytes:
        """The backup key version a backup header names."""
        return self.backup_key(version)[1]

    def wrap(self, app_id: str, dek: bytes, aad: bytes) -> tuple[int, str]:
        """Seal a data key under the app's newest KEK."""
        version, kek = self.kek(app_id)
        return version, _b64(aead.seal(kek, dek, aad))

    def unwrap(self, app_id: str, version: int, wrapped: str, aad: bytes) -> bytes:
        """Open a data key sealed by ``wrap``."""
        _, kek = self.kek(app_id, version)
        return aead.unseal(kek, _unb64(wrapped), aad)
