"""The local keyring: sealed at rest, 0600, passphrase-bound, versioned and retirable."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from bastion.security.crypto.errors import KeyUnavailable
from bastion.security.crypto.keyring import LocalKeyring, MasterKey

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PASSPHRASE = "a long enough passphrase"


def ring(path: Path, passphrase: str | None = PASSPHRASE) -> LocalKeyring:
    """A keyring protected by a passphrase (or by a development key file)."""
    master = MasterKey(
        passphrase=passphrase, raw_key=None, dev_key_file=path.with_name("master.key")
    )
    return LocalKeyring(path, master)


def test_created_sealed_and_private(tmp_path: Path) -> None:
    """The file is 0600, names scrypt, and holds no key in the clear."""
    keys = ring(tmp_path / "keyring.json")
    assert keys.create(NOW) is True
    assert keys.create(NOW) is False
    path = tmp_path / "keyring.json"
    assert path.stat().st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert document["kdf"]["name"] == "scrypt"
    assert set(document) == {"format", "kdf", "sealed"}
    _version, kek = keys.kek("app_x")
    assert base64.b64encode(kek).decode() not in path.read_text()


def test_wrong_passphrase_cannot_open(tmp_path: Path) -> None:
    """Another passphrase: the keyring refuses, without saying more."""
    ring(tmp_path / "keyring.json").create(NOW)
    with pytest.raises(KeyUnavailable, match="cannot be opened"):
        ring(tmp_path / "keyring.json", "some other passphrase!").status()


def test_per_app_keks_and_rotation(tmp_path: Path) -> None:
    """Apps get different KEKs; rotate adds a version; old wrappings still open until retired."""
    keys = ring(tmp_path / "keyring.json")
    keys.create(NOW)
    assert keys.kek("app_a")[1] != keys.kek("app_b")[1]
    v1, wrapped = keys.wrap("app_a", b"k" * 32, b"aad")
    assert keys.rotate(NOW + dt.timedelta(days=1)) == 2
    v2, rewrapped = keys.wrap("app_a", b"k" * 32, b"aad")
    assert (v1, v2) == (1, 2)
    assert keys.unwrap("app_a", 1, wrapped, b"aad") == b"k" * 32
    with pytest.raises(Exception, match="could not be opened"):
        keys.unwrap("app_b", 1, wrapped, b"aad")
    keys.set_min_decryption_version(2)
    with pytest.raises(KeyUnavailable, match="retired"):
        keys.unwrap("app_a", 1, wrapped, b"aad")
    assert keys.unwrap("app_a", 2, rewrapped, b"aad") == b"k" * 32
    assert keys.destroy_versions_below(2) == [1]
    assert [v for v, _ in keys.status().versions] == [2]


def test_another_process_sees_a_rotation(tmp_path: Path) -> None:
    """A running server's keyring object picks up a version the CLI added."""
    server_side = ring(tmp_path / "keyring.json")
    server_side.create(NOW)
    assert server_side.status().primary == 1
    ring(tmp_path / "keyring.json").rotate(NOW)
    assert server_side.status().primary == 2


def test_key_age(tmp_path: Path) -> None:
    """The primary key's age is what the policy check compares."""
    keys = ring(tmp_path / "keyring.json", passphrase=None)
    keys.create(NOW)
    assert keys.status().primary_age(NOW + dt.timedelta(days=100)).days == 100
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
