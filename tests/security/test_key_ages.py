"""Key-age samples: read from the key source and signing keys, kept when the source fails."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bastion.core.settings import VaultSettings
from bastion.observe.key_ages import KekSample, KeyAgeCollector
from bastion.security.crypto import vault
from bastion.security.crypto.keyring import LocalKeyring, MasterKey
from bastion.security.crypto.shredlist import ShredList
from bastion.security.key_ages import sample
from bastion.security.keys import SigningKeyStore
from tests.support.server import free_port

DAYS_AGO = 30


def ages(collector: KeyAgeCollector) -> dict[tuple[str, str], float]:
    """Every sample the collector exposes now, by (name, source)."""
    return {
        (s.name, s.labels.get("source", "")): s.value
        for family in collector.collect()
        for s in family.samples
    }


async def test_sample_reads_kek_and_signing_key_ages(tmp_path: Path) -> None:
    """A 30-day-old keyring and a fresh signing key give those ages, and the policy."""
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS_AGO)
    ring = LocalKeyring(
        tmp_path / "keyring.json",
        MasterKey(passphrase=None, raw_key=None, dev_key_file=tmp_path / "master.key"),
    )
    ring.create(created)
    signing = SigningKeyStore(tmp_path / "signing", None)
    signing.load_or_create("ES256")
    collector = KeyAgeCollector()
    assert ages(collector) == {}
    await sample(collector, ring, signing, max_age_days=90)
    found = ages(collector)
    assert abs(found[("bastion_kek_age_seconds", "local")] - DAYS_AGO * 86_400) < 60
    assert found[("bastion_kek_max_age_seconds", "local")] == 90 * 86_400
    assert found[("bastion_kek_version", "local")] == 1
    assert 0 <= found[("bastion_signing_key_age_seconds", "")] < 60


async def test_unreachable_source_keeps_the_last_sample(tmp_path: Path) -> None:
    """Vault not answering: the last known creation time stays, so the age keeps growing."""
    collector = KeyAgeCollector()
    unreachable = vault.connect(
        VaultSettings(address=f"http://127.0.0.1:{free_port()}", token="hvs.t"),
        ShredList(tmp_path / "shredded.json"),
    )
    signing = SigningKeyStore(tmp_path / "signing", None)
    await sample(collector, unreachable, signing, max_age_days=90)
    assert ("bastion_kek_age_seconds", "vault") not in ages(collector)
    collector.record(KekSample("vault", 3, time.time() - 100, 90 * 86_400))
    await sample(collector, unreachable, signing, max_age_days=90)
    assert ages(collector)[("bastion_kek_age_seconds", "vault")] >= 100
    assert ages(collector)[("bastion_kek_version", "vault")] == 3
