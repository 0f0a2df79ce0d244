"""Token signing keys: generated at first start, kept under ``<data_dir>/keys``, rotated.

Private keys are written with file mode 0600 and, when a passphrase is configured,
encrypted (PKCS#8). ``index.json`` gives each key a state:

- ``next``: published in the JWKS but not yet used, so relying parties that cache
  the JWKS already know it when it starts signing;
- ``active``: signs new tokens (exactly one);
- ``retired``: no longer signs, still published and accepted until ``retire_after``,
  when the last token it signed has expired; then it is deleted.

Rotation promotes ``next`` to ``active``, retires the old active key and creates a
new ``next`` key. It runs on ``bastion keys rotate-signing`` and automatically when
the active key is older than the configured period; every server re-reads the index
periodically, so all of them switch keys together.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, KeySet, OctKey, OKPKey, RSAKey

_INDEX = "index.json"
_LOCK = ".lock"
_PRIVATE_MODE = 0o600
_DIR_MODE = 0o700
NEXT = "next"
ACTIVE = "active"
RETIRED = "retired"

SigningKey = ECKey | OKPKey


@dataclass(slots=True)
class KeyRing:
    """The active signing key and every key tokens may be verified with.

    One object lives for the whole process; ``update_from`` swaps its contents in
    place when the keys on disk change, so every holder sees the new keys.
    """

    active: SigningKey
    verification: KeySet
    alg: str

    def jwks(self) -> dict[str, Any]:
        """The public keys as an RFC 7517 JWK Set."""
        return {"keys": [key.as_dict(private=False) for key in self.verification.keys]}

    def update_from(self, other: KeyRing) -> None:
        """Take the keys of ``other`` (after a rotation)."""
        self.active, self.verification, self.alg = other.active, other.verification, other.alg


class KeyRotationError(Exception):
    """A rotation was refused (the next key has not been published long enough)."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did."""

    retired: str
    activated: str
    published: str


def _generate(alg: str) -> SigningKey:
    params: KeyParameters = {"alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, auto_kid=True)
    return OKPKey.generate_key("Ed25519", parameters=params, auto_kid=True)


def _load(path: Path, alg: str, passphrase: str | None) -> SigningKey:
    pem = path.read_bytes()
    params: KeyParameters = {"alg": alg, "use": "sig"}
    cls = ECKey if alg == "ES256" else OKPKey
    return cls.import_key(pem, parameters=params, password=passphrase)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SigningKeyStore:
    """Reads, creates and rotates signing keys in one folder."""

    def __init__(self, directory: Path, passphrase: str | None) -> None:
        self.directory = directory
        self._passphrase = passphrase

    def load_or_create(self, alg: str, now: datetime | None = None) -> KeyRing:
        """Return the key ring, generating the first keys if there are none yet."""
        moment = now or datetime.now().astimezone()
        self.directory.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        os.chmod(self.directory, _DIR_MODE)
        index = self._read_index()
        if index is None or not any(e.get("state") == NEXT for e in self._entries(index)):
            with self._locked():
                index = self._read_index()
                if index is None:
                    index = self._first_index(alg, moment)
                elif not any(e.get("state") == NEXT for e in self._entries(index)):
                    index = self._with_next(index, moment)
        return self._ring(index, moment)

    def rotate(
        self, now: datetime, *, keep_seconds: int, publish_seconds: int, force: bool = False
    ) -> Rotation:
        """Promote the next key; keep the old one for ``keep_seconds`` (its tokens' life)."""
        with self._locked():
            index = self._read_index()
            if index is None:
                raise KeyRotationError("there are no signing keys yet")
            entries = self._entries(index)
            upcoming = next(e for e in entries if e["state"] == NEXT)
            published = _parse_time(upcoming.get("created_at")) or now
            if not force and now - published < timedelta(seconds=publish_seconds):
                raise KeyRotationError(
                    f"the next key {upcoming['kid']} has been published for less than "
                    f"{publish_seconds} s; relying parties may not know it yet (use --force)"
                )
            current = next(e for e in entries if e["state"] == ACTIVE)
            current["state"] = RETIRED
            current["retire_after"] = (now + timedelta(seconds=keep_seconds)).isoformat()
            upcoming["state"] = ACTIVE
            upcoming["activated_at"] = now.isoformat()
            index["active"] = upcoming["kid"]
            index = self._with_next(index, now)
            fresh = next(e for e in self._entries(index) if e["state"] == NEXT)
        return Rotation(current["kid"], upcoming["kid"], fresh["kid"])

    def rotation_due(self, now: datetime, period_days: int) -> bool:
        """Whether the active key is older than ``period_days`` (0 disables)."""
        if not period_days:
            return False
        since = self.active_since()
        return since is not None and now - since >= timedelta(days=period_days)

    def active_since(self) -> datetime | None:
        """When the active signing key became active (None before the first key)."""
        index = self._read_index()
        if index is None:
            return None
        current = next(e for e in self._entries(index) if e["state"] == ACTIVE)
        return _parse_time(current.get("activated_at") or current.get("created_at"))

    def prune(self, now: datetime) -> list[str]:
        """Delete retired keys whose tokens have all expired; return their ids."""
        with self._locked():
            index = self._read_index()
            if index is None:
                return []
            gone = [e for e in self._entries(index) if self._expired(e, now)]
            if not gone:
                return []
            index["keys"] = [e for e in self._entries(index) if not self._expired(e, now)]
            self._write_index(index)
            for entry in gone:
                self._key_path(entry["kid"]).unlink(missing_ok=True)
        return [e["kid"] for e in gone]

    def describe(self) -> list[dict[str, Any]]:
        """The index entries (no key material), for ``bastion keys list``."""
        index = self._read_index()
        return self._entries(index) if index else []

    def load(self, now: datetime) -> KeyRing:
        """The key ring as it is on disk now."""
        index = self._read_index()
        if index is None:
            raise KeyRotationError("there are no signing keys yet")
        return self._ring(index, now)

    @staticmethod
    def _expired(entry: dict[str, Any], now: datetime) -> bool:
        after = _parse_time(entry.get("retire_after"))
        return entry["state"] == RETIRED and after is not None and after <= now

    @staticmethod
    def _entries(index: dict[str, Any]) -> list[dict[str, Any]]:
        # Indexes written before key states existed: the active key, the rest retired.
        entries: list[dict[str, Any]] = index["keys"]
        for entry in entries:
            entry.setdefault("state", ACTIVE if entry["kid"] == index["active"] else RETIRED)
        return entries

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / _LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_index(self) -> dict[str, Any] | None:
        path = self.directory / _INDEX
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _write_index(self, index: dict[str, Any]) -> None:
        temporary = self.directory / f"{_INDEX}.{os.getpid()}.tmp"
        temporary.unlink(missing_ok=True)
        _write_private(temporary, json.dumps(index, indent=2).encode())
        os.replace(temporary, self.directory / _INDEX)

    def _new_key(self, alg: str, state: str, now: datetime) -> dict[str, Any]:
        key = _generate(alg)
        _write_private(self._key_path(key.kid), key.as_pem(private=True, password=self._passphrase))
        return {"kid": key.kid, "alg": alg, "created_at": now.isoformat(), "state": state}

    def _first_index(self, alg: str, now: datetime) -> dict[str, Any]:
        active = self._new_key(alg, ACTIVE, now)
        active["activated_at"] = now.isoformat()
        index = {"active": active["kid"], "keys": [active, self._new_key(alg, NEXT, now)]}
        self._write_index(index)
        return index

    def _with_next(self, index: dict[str, Any], now: datetime) -> dict[str, Any]:
        alg = next(e["alg"] for e in self._entries(index) if e["kid"] == index["active"])
        index["keys"] = [*self._entries(index), self._new_key(alg, NEXT, now)]
        self._write_index(index)
        return index

    def _ring(self, index: dict[str, Any], now: datetime) -> KeyRing:
        entries = [e for e in self._entries(index) if not self._expired(e, now)]
        keys = {
            e["kid"]: _load(self._key_path(e["kid"]), e["alg"], self._passphrase) for e in entries
        }
        active = keys[index["active"]]
        alg = next(e["alg"] for e in entries if e["kid"] == index["active"])
        # The active key first: it is the one most verifications need.
        ordered: list[OctKey | RSAKey | ECKey | OKPKey] = [active]
        ordered += [k for kid, k in keys.items() if kid != index["active"]]
        return KeyRing(active=active, verification=KeySet(ordered), alg=alg)

    def _key_path(self, kid: str | None) -> Path:
        if not kid or not kid.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a key id must be a base64url thumbprint")
        return self.directory / f"signing-{kid}.pem"
