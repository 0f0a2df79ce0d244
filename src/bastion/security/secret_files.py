"""Secrets kept in a file under the data directory: the configured value, or one made once.

Several nodes that share the data directory share the secret; nodes with their own
directories must be given the same configured value.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def load_or_create(path: Path, configured: str | None, size: int = KEY_BYTES) -> bytes:
    """The configured secret, or the one at ``path``, generated there (mode 0600) if absent.

    Creation is exclusive, so two processes starting at once end up with the same key.
    """
    if configured:
        return configured.encode()
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(size)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
