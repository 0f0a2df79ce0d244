"""Secrets in the data directory: configured value first, else made once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from bastion.security import secret_files


def test_a_secret_is_made_once_private_and_then_reused(tmp_path: Path) -> None:
    """The first call writes 32 random bytes (0600, directory 0700); later calls read them."""
    path = tmp_path / "keys" / "some.key"
    first = secret_files.load_or_create(path, None)
    assert len(first) == secret_files.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secret_files.load_or_create(path, None) == first


def test_a_configured_secret_wins_and_writes_nothing(tmp_path: Path) -> None:
    """Nodes with their own data directories share a secret by configuring it."""
    path = tmp_path / "keys" / "some.key"
    assert secret_files.load_or_create(path, "configured") == b"configured"
    assert not path.exists()
