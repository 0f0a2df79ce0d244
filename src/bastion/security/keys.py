"""Token signing keys: generated at first start, kept under ``<data_dir>/keys``.

Private keys are written with file mode 0600 and, when a passphrase is configured,
encrypted (PKCS#8). ``index.json`` names the active key; every key in the folder is
published in the JWKS and accepted for verification, so a token signed just before
a rotation stays valid until it expires.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, KeySet, OKPKey

_INDEX = "index.json"
_PRIVATE_MODE = 0o600
_DIR_MODE = 0o700

SigningKey = ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The active signing key and every key tokens may be verified with."""

    active: SigningKey
    verification: KeySet
    alg: str

    def jwks(self) -> dict[str, Any]:
        """The public keys as an RFC 7517 JWK Set."""
        return {"keys": [key.as_dict(private=False) for key in self.verification.keys]}


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


class SigningKeyStore:
    """Reads and creates signing keys in one folder."""

    def __init__(self, directory: Path, passphrase: str | None) -> None:
        self.directory = directory
        self._passphrase = passphrase

    def load_or_create(self, alg: str) -> KeyRing:
        """Return the key ring, generating the first key if there is none yet."""
        index = self._read_index()
        if index is None:
            return self._create_first(alg)
        return self._ring(index)

    def _read_index(self) -> dict[str, Any] | None:
        path = self.directory / _INDEX
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _create_first(self, alg: str) -> KeyRing:
        self.directory.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        os.chmod(self.directory, _DIR_MODE)
        key = _generate(alg)
        _write_private(self._key_path(key.kid), key.as_pem(private=True, password=self._passphrase))
        entry = {"kid": key.kid, "alg": alg, "created_at": datetime.now(UTC).isoformat()}
        index = {"active": key.kid, "keys": [entry]}
        try:
            _write_private(self.directory / _INDEX, json.dumps(index, indent=2).encode())
        except FileExistsError:
            # Another worker created the first key at the same moment: use theirs.
            self._key_path(key.kid).unlink()
            found = self._read_index()
            if found is None:
                raise
            return self._ring(found)
        return self._ring(index)

    def _ring(self, index: dict[str, Any]) -> KeyRing:
        keys = {
            entry["kid"]: _load(self._key_path(entry["kid"]), entry["alg"], self._passphrase)
            for entry in index["keys"]
        }
        active = keys[index["active"]]
        alg = next(e["alg"] for e in index["keys"] if e["kid"] == index["active"])
        return KeyRing(active=active, verification=KeySet(list(keys.values())), alg=alg)

    def _key_path(self, kid: str | None) -> Path:
        if not kid or not kid.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a key id must be a base64url thumbprint")
        return self.directory / f"signing-{kid}.pem"
