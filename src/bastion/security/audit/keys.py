"""The audit log's own keys: an HMAC key for identifiers and a checkpoint signing key.

Both live under ``<data_dir>/audit`` and are separate from the token signing keys, so
a leaked token key cannot forge checkpoints and rotating one leaves the other alone.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from joserfc.jwk import OKPKey

from bastion.security import secret_files
from bastion.security.keys import KeyRing, SigningKeyStore

CHECKPOINT_ALG = "Ed25519"
_HMAC_FILE = "hmac.key"


def audit_dir(data_dir: Path) -> Path:
    """Where the audit keys are kept."""
    return data_dir / "audit"


def load_hmac_key(data_dir: Path, configured: str | None) -> bytes:
    """The configured HMAC key, or the one generated at first start (file mode 0600)."""
    return secret_files.load_or_create(audit_dir(data_dir) / _HMAC_FILE, configured)


def checkpoint_keys(data_dir: Path, passphrase: str | None) -> KeyRing:
    """The Ed25519 key ring that signs checkpoints (created on first use)."""
    store = SigningKeyStore(audit_dir(data_dir) / "checkpoint-keys", passphrase)
    return store.load_or_create(CHECKPOINT_ALG)


def rotate_checkpoint_key(data_dir: Path, passphrase: str | None) -> str:
    """Make a new checkpoint signing key active; older keys stay for verification.

    Returns the new key id. Export the public keys again afterwards
    (``bastion audit public-keys``).
    """
    checkpoint_keys(data_dir, passphrase)
    directory = audit_dir(data_dir) / "checkpoint-keys"
    key = OKPKey.generate_key(
        "Ed25519", parameters={"alg": CHECKPOINT_ALG, "use": "sig"}, auto_kid=True
    )
    kid = str(key.kid)
    _write_new(directory / f"signing-{kid}.pem", key.as_pem(private=True, password=passphrase))
    index_path = directory / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["keys"].append(
        {"kid": kid, "alg": CHECKPOINT_ALG, "created_at": datetime.now(UTC).isoformat()}
    )
    index["active"] = kid
    staged = directory / "index.json.new"
    staged.unlink(missing_ok=True)
    _write_new(staged, json.dumps(index, indent=2).encode())
    os.replace(staged, index_path)
    return kid


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
