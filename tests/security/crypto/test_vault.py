"""Vault Transit key source: the real hvac client over real HTTP against recorded Transit
answers (tests/support/vault.py), never a live Vault."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bastion.core.settings import Settings, VaultSettings
from bastion.security.crypto import aead, vault
from bastion.security.crypto.errors import KeySourceDown, KeyUnavailable
from bastion.security.crypto.shredlist import ShredList
from bastion.security.crypto.vault import VaultTransit
from tests.support.server import free_port
from tests.support.vault import FakeVault, transit_vault

TOKEN = "hvs.CAESIJtest-token-never-printed"
AAD = b"bastion/dek/v1|app_a|dk_1|channel|ch_1|data"
DEK = bytes(range(32))
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def fake() -> Iterator[FakeVault]:
    """A Transit engine with the KEK and backup keys created, as the runbook says."""
    with transit_vault(TOKEN) as server:
        yield server


def connect(tmp_path: Path, address: str, **values: Any) -> VaultTransit:
    """The key source for ``address`` with the test token unless told otherwise."""
    values.setdefault("token", TOKEN)
    return vault.connect(VaultSettings(address=address, **values), ShredList(tmp_path / "s.json"))


@pytest.fixture
def transit(fake: FakeVault, tmp_path: Path) -> VaultTransit:
    """The key source pointed at the fake."""
    return connect(tmp_path, fake.address)


def down_reason(call: Any, *args: Any) -> str:
    """The operator reason of the KeySourceDown that ``call`` raises."""
    with pytest.raises(KeySourceDown) as caught:
        call(*args)
    assert caught.value.status == 503
    assert TOKEN not in caught.value.reason
    assert TOKEN not in str(caught.value)
    reason: str = caught.value.reason
    return reason


def test_wrap_unwrap_round_trip_with_app_context(transit: VaultTransit, fake: FakeVault) -> None:
    """A data key wrapped by Transit opens again; Vault saw the app and AAD as context."""
    version, wrapped = transit.wrap("app_a", DEK, AAD)
    assert version == 1
    assert wrapped.startswith("vault:v1:")
    assert transit.unwrap("app_a", version, wrapped, AAD) == DEK
    operation, name, body = fake.requests[0]
    assert (operation, name) == ("encrypt", "bastion-kek")
    assert base64.b64decode(body["context"]) == b"bastion/kek/v1|app_a|" + AAD
    assert base64.b64decode(body["plaintext"]) == DEK


def test_wrapping_is_bound_to_app_and_aad(transit: VaultTransit) -> None:
    """Another app, another AAD or a relabelled version does not open the wrapping."""
    version, wrapped = transit.wrap("app_a", DEK, AAD)
    with pytest.raises(aead.InvalidCiphertext):
        transit.unwrap("app_b", version, wrapped, AAD)
    with pytest.raises(aead.InvalidCiphertext):
        transit.unwrap("app_a", version, wrapped, AAD.replace(b"ch_1", b"ch_2"))
    with pytest.raises(aead.InvalidCiphertext):
        transit.unwrap("app_a", version + 1, wrapped, AAD)


def test_rotate_new_wraps_use_new_version_old_still_unwrap(transit: VaultTransit) -> None:
    """After a rotation new data keys are wrapped under v2 and v1 wrappings still open."""
    _, old = transit.wrap("app_a", DEK, AAD)
    assert transit.rotate(NOW) == 2
    version, new = transit.wrap("app_a", DEK, AAD)
    assert (version, new[:9]) == (2, "vault:v2:")
    assert transit.unwrap("app_a", 1, old, AAD) == DEK
    assert transit.unwrap("app_a", 2, new, AAD) == DEK
    status = transit.status()
    assert (status.primary, status.min_decryption_version) == (2, 1)
    assert [v for v, _ in status.versions] == [1, 2]


def test_min_decryption_version_retires_then_trim_destroys(transit: VaultTransit) -> None:
    """Raising min_decryption_version refuses v1; trimming below it deletes v1."""
    _, old = transit.wrap("app_a", DEK, AAD)
    transit.rotate(NOW)
    _, new = transit.wrap("app_a", DEK, AAD)
    with pytest.raises(ValueError, match="retire"):
        transit.destroy_versions_below(2)
    with pytest.raises(ValueError, match="no KEK version"):
        transit.set_min_decryption_version(3)
    transit.set_min_decryption_version(2)
    with pytest.raises(KeyUnavailable, match="retired"):
        transit.unwrap("app_a", 1, old, AAD)
    assert transit.unwrap("app_a", 2, new, AAD) == DEK
    assert transit.status().min_decryption_version == 2
    assert transit.destroy_versions_below(2) == [1]
    assert transit.unwrap("app_a", 2, new, AAD) == DEK


def test_key_age_comes_from_vault_creation_times(fake: FakeVault, tmp_path: Path) -> None:
    """The primary version's age is the creation time Vault lists for it."""
    created = int((NOW - dt.timedelta(days=100)).timestamp())
    fake.create_key("old-kek", created=created)
    status = connect(tmp_path, fake.address, key_name="old-kek").status()
    assert status.primary == 1
    assert dt.timedelta(days=99) < status.primary_age(NOW) < dt.timedelta(days=101)


def test_backup_key_is_a_transit_datakey_bound_to_the_backup(transit: VaultTransit) -> None:
    """Each backup gets a fresh key whose wrapping opens only for that backup id."""
    first = transit.new_backup_key("bak_1")
    assert first.wrapped is not None
    assert first.wrapped.startswith("vault:v1:")
    assert transit.new_backup_key("bak_1").key != first.key
    assert transit.open_backup_key(1, first.wrapped, "bak_1") == first.key
    with pytest.raises(KeyUnavailable):
        transit.open_backup_key(1, first.wrapped, "bak_2")
    with pytest.raises(KeyUnavailable, match="local keyring"):
        transit.open_backup_key(1, None, "bak_1")
    assert transit.rotate_backup(NOW) == 2
    assert transit.new_backup_key("bak_3").version == 2
    assert transit.status().backup_primary == 2


def test_wrong_token_is_a_clear_error_without_the_token(fake: FakeVault, tmp_path: Path) -> None:
    """Vault's 403 becomes an operator error naming the path, not the token."""
    source = connect(tmp_path, fake.address, token="hvs.wrong")
    reason = down_reason(source.wrap, "app_a", DEK, AAD)
    assert "transit/encrypt/bastion-kek" in reason
    assert "permission denied" in reason
    assert "hvs.wrong" not in reason


def test_least_privilege_token_wraps_but_cannot_rotate(fake: FakeVault, tmp_path: Path) -> None:
    """The server policy of the runbook (read, encrypt, decrypt, datakey) serves; rotating
    needs the operator policy."""
    fake.tokens["hvs.server"] = frozenset({"read", "encrypt", "decrypt", "datakey"})
    source = connect(tmp_path, fake.address, token="hvs.server")
    version, wrapped = source.wrap("app_a", DEK, AAD)
    assert source.unwrap("app_a", version, wrapped, AAD) == DEK
    backup = source.new_backup_key("bak_1")
    assert source.open_backup_key(backup.version, backup.wrapped, "bak_1") == backup.key
    assert source.status().primary == 1
    assert "permission denied" in down_reason(source.rotate, NOW)


def test_sealed_vault_is_a_clear_error(transit: VaultTransit, fake: FakeVault) -> None:
    """A sealed Vault (503) is reported as such; unsealing restores service."""
    _, wrapped = transit.wrap("app_a", DEK, AAD)
    fake.sealed = True
    assert "sealed" in down_reason(transit.unwrap, "app_a", 1, wrapped, AAD)
    assert "sealed" in down_reason(transit.status)
    fake.sealed = False
    assert transit.unwrap("app_a", 1, wrapped, AAD) == DEK


def test_unreachable_vault_is_a_clear_error(tmp_path: Path) -> None:
    """Nobody listening: the reason names the address and what to check."""
    address = f"http://127.0.0.1:{free_port()}"
    reason = down_reason(connect(tmp_path, address).wrap, "app_a", DEK, AAD)
    assert address in reason
    assert "did not answer" in reason


def test_missing_key_says_what_to_create(fake: FakeVault, tmp_path: Path) -> None:
    """A key that was never created is an operator error, not a crash."""
    reason = down_reason(connect(tmp_path, fake.address, key_name="nope").status)
    assert "transit/keys/nope" in reason


def test_token_file(fake: FakeVault, tmp_path: Path) -> None:
    """The token may come from a file (Vault Agent); a missing file is a clear error."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    source = connect(tmp_path, fake.address, token=None, token_file=token_file)
    assert source.wrap("app_a", DEK, AAD)[0] == 1
    missing = VaultSettings(address=fake.address, token_file=tmp_path / "absent")
    reason = down_reason(vault.connect, missing, ShredList(tmp_path / "s.json"))
    assert reason.startswith("cannot read the Vault token file")


def test_shredded_keys_are_remembered_locally(transit: VaultTransit, tmp_path: Path) -> None:
    """Shredded key ids persist beside the keys, for every process."""
    transit.record_destroyed(["dk_1"])
    assert transit.is_destroyed("dk_1")
    assert not transit.is_destroyed("dk_2")
    assert "dk_1" in ShredList(tmp_path / "s.json")
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o600


def test_settings_refuse_plain_http_off_loopback_and_in_production() -> None:
    """http:// only on loopback, never in production; the token is redacted."""
    with pytest.raises(ValidationError, match="only on loopback"):
        VaultSettings(address="http://vault.example:8200", token=TOKEN)
    with pytest.raises(ValidationError, match=r"needs encryption\.vault\.token"):
        Settings(encryption={"key_source": "vault", "vault": {"address": "https://v:8200"}})
    local = Settings(
        encryption={
            "key_source": "vault",
            "vault": {"address": "http://[::1]:8200", "token": TOKEN},
        }
    )
    assert "encryption.vault.address is not an https:// URL" in local.insecure_findings()
    shown = str(local.redacted())
    assert TOKEN not in shown
    assert local.redacted()["encryption"]["vault"]["token"] == "**********"
    with pytest.raises(ValidationError) as refused:
        Settings(
            encryption={"key_source": "vault", "vault": {"address": "ftp://v", "token": TOKEN}}
        )
    assert TOKEN not in str(refused.value)
