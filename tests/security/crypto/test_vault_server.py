"""A server and the `bastion` commands with Vault Transit as the key source, over real
HTTP against recorded Transit answers (tests/support/vault.py), never a live Vault."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.security import scopes
from tests.conftest import Databases, make_settings, start_server
from tests.support.operators import operator_headers
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant
from tests.support.vault import FakeVault, transit_vault

pytestmark = pytest.mark.slow

TOKEN = "hvs.CAESIJserver-token-never-printed"
BIN = Path(sys.executable).parent
AGE_DAYS = 100


@pytest.fixture
def fake() -> Iterator[FakeVault]:
    """Transit with a KEK made 100 days ago (older than the 90-day policy)."""
    created = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=AGE_DAYS)).timestamp())
    with transit_vault(TOKEN, kek_created=created) as vault:
        yield vault


def vault_settings(fake: FakeVault) -> dict[str, object]:
    """The encryption section that points at the fake."""
    return {
        "key_source": "vault",
        "vault": {"address": fake.address, "token": TOKEN},
        "dek_cache_seconds": 1.0,
    }


@pytest.fixture
def vault_server(fake: FakeVault, databases: Databases, tmp_path: Path) -> Iterator[ServerThread]:
    """A server of its own whose KEKs are in (fake) Vault."""
    settings = make_settings(tmp_path / "data", databases.new(), encryption=vault_settings(fake))
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def tenant_v(vault_server: ServerThread) -> AsyncIterator[Tenant]:
    """An app on the Vault-backed server."""
    async with httpx.AsyncClient(base_url=vault_server.base_url, timeout=10) as client:
        yield new_tenant(vault_server, client)


def bastion(
    server: ServerThread, *args: str, token: str = TOKEN
) -> subprocess.CompletedProcess[str]:
    """Run a `bastion` command against the server's database and the fake Vault."""
    vault = server.settings.encryption.vault
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(server.settings.server.data_dir),
        "BASTION_DATABASE__URL": server.settings.database_url,
        "BASTION_ENCRYPTION__KEY_SOURCE": "vault",
        "BASTION_ENCRYPTION__VAULT__ADDRESS": str(vault.address),
        "BASTION_ENCRYPTION__VAULT__TOKEN": token,
    }
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(BIN / "bastion"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def messages(tenant: Tenant, user_headers: dict[str, str], channel: str) -> list[str]:
    """The texts of a channel's messages, oldest first."""
    response = await tenant.http.get(f"/v1/channels/{channel}/messages", headers=user_headers)
    assert response.status_code == 200, response.text
    return sorted(m["text"] for m in response.json()["data"])


async def test_sealed_vault_answers_503_and_writes_nothing(
    tenant_v: Tenant, fake: FakeVault
) -> None:
    """Messages are sealed under Transit-wrapped keys; while Vault is sealed a send that needs
    a key is a 503 that names nothing internal and leaves no trace."""
    alice, bob = await tenant_v.user("alice"), await tenant_v.user("bob")
    first = str((await tenant_v.channel(alice, [bob]))["id"])
    await tenant_v.send(alice, first, "before the seal")
    assert any(op == "encrypt" for op, _, _ in fake.requests)
    second = str((await tenant_v.channel(alice, [bob], name="second"))["id"])
    fake.sealed = True
    refused = await tenant_v.http.post(
        f"/v1/channels/{second}/messages", json={"text": "lost?"}, headers=alice.headers
    )
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert TOKEN not in refused.text
    assert "vault" not in refused.text.lower()
    await asyncio.sleep(1.2)  # the first channel's key leaves the cache
    unreadable = await tenant_v.http.get(f"/v1/channels/{first}/messages", headers=alice.headers)
    assert unreadable.status_code == 503
    fake.sealed = False
    assert await messages(tenant_v, alice.headers, second) == []
    assert await messages(tenant_v, alice.headers, first) == ["before the seal"]
    await tenant_v.send(alice, second, "after the seal")
    assert await messages(tenant_v, alice.headers, second) == ["after the seal"]


async def test_metrics_show_the_vault_kek_age(tenant_v: Tenant) -> None:
    """/metrics reports the Transit key's age from Vault's creation time, and the policy."""
    scraper = await operator_headers(tenant_v, scopes.METRICS_READ)
    text = (await tenant_v.http.get("/metrics", headers=scraper)).text
    samples = {
        (s.name, s.labels.get("source")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    age = samples[("bastion_kek_age_seconds", "vault")]
    assert (AGE_DAYS - 1) * 86_400 < age < (AGE_DAYS + 1) * 86_400
    assert samples[("bastion_kek_max_age_seconds", "vault")] == 90 * 86_400
    assert samples[("bastion_kek_version", "vault")] == 1


async def test_keys_commands_drive_transit(
    tenant_v: Tenant, vault_server: ServerThread, fake: FakeVault
) -> None:
    """check warns about the 100-day key, rotate adds v2, rewrap moves the data keys,
    retire sets min_decryption_version, backups seal under Transit data keys; the data
    reads back throughout, and a wrong token is one clear line."""
    alice, bob = await tenant_v.user("alice"), await tenant_v.user("bob")
    channel = str((await tenant_v.channel(alice, [bob]))["id"])
    await tenant_v.send(alice, channel, "kept across rotation")
    run = vault_server
    status = await asyncio.to_thread(bastion, run, "keys", "status")
    assert status.returncode == 0, status.stderr
    assert "key source vault" in status.stdout
    assert "kek v1" in status.stdout
    check = await asyncio.to_thread(bastion, run, "keys", "check")
    assert check.returncode == 1
    assert "crypto.W001" in check.stderr
    rotate = await asyncio.to_thread(bastion, run, "keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert "KEK v2" in rotate.stdout
    assert (await asyncio.to_thread(bastion, run, "keys", "check")).returncode == 0
    backup_rotate = await asyncio.to_thread(bastion, run, "keys", "rotate", "--backup")
    assert backup_rotate.returncode == 0, backup_rotate.stderr
    assert fake.keys["bastion-backup"].latest == 2
    rewrap = await asyncio.to_thread(bastion, run, "keys", "rewrap")
    assert rewrap.returncode == 0, rewrap.stderr
    assert "under KEK v2" in rewrap.stdout
    retire = await asyncio.to_thread(bastion, run, "keys", "retire", "--min-version", "2")
    assert retire.returncode == 0, retire.stderr
    assert fake.keys["bastion-kek"].min_decryption_version == 2
    await asyncio.sleep(1.2)
    assert await messages(tenant_v, alice.headers, channel) == ["kept across rotation"]
    backup_dir = run.settings.server.data_dir / "backups"
    made = await asyncio.to_thread(bastion, run, "backup", "create", "--dir", str(backup_dir))
    assert made.returncode == 0, made.stderr
    verified = await asyncio.to_thread(bastion, run, "backup", "verify", made.stdout.strip())
    assert verified.returncode == 0, verified.stderr
    refused = await asyncio.to_thread(bastion, run, "keys", "status", token="hvs.wrong")
    assert refused.returncode == 1
    assert "Key source unavailable: Vault refused transit/keys/bastion-kek" in refused.stderr
    assert "permission denied" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "hvs.wrong" not in refused.stderr + refused.stdout
