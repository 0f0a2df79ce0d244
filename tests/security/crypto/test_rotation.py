"""Online key rotation under load: rotate + rewrap + re-encrypt (killed once and resumed)
while messages keep arriving; everything reads back; retired KEK versions stop working."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bastion.app import database, key_source
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.security.crypto.envelope import EnvelopeCipher, key_aad
from bastion.security.crypto.errors import KeyUnavailable
from bastion.security.crypto.rotation import Reencryption
from bastion.store import migrate
from bastion.store.repos import logins
from bastion.store.sealing import Owner, key_id_of
from bastion.store.tables import login_credentials
from tests.conftest import Databases, make_settings, start_server
from tests.support.logins import SECRET, legacy_login
from tests.support.raw import sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


@pytest.fixture
def rotating_server(databases: Databases, tmp_path: Path) -> Iterator[ServerThread]:
    """A server of its own (own keyring), caching data keys for one second."""
    settings = make_settings(
        tmp_path / "data", databases.new(), encryption={"dek_cache_seconds": 1.0}
    )
    running = start_server(settings)
    yield running
    running.stop()


def cli_env(server: ServerThread) -> dict[str, str]:
    """Environment for `bastion` commands working on the server's database and keyring."""
    return {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(server.settings.server.data_dir),
        "BASTION_DATABASE__URL": server.settings.database_url,
        "BASTION_ENCRYPTION__DEK_CACHE_SECONDS": "1",
    }


async def bastion(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a `bastion` command to completion (off the event loop)."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "bastion"), *args],
        env=cli_env(server),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def writer(tenant: Tenant, user: User, channels: list[str], stop: asyncio.Event) -> list[str]:
    """Keep sending messages until told to stop; return their texts."""
    sent: list[str] = []
    while not stop.is_set():
        text = f"during {len(sent)}"
        await tenant.send(user, channels[len(sent) % len(channels)], text)
        sent.append(text)
        await asyncio.sleep(0.01)
    return sent


async def all_texts(http: httpx.AsyncClient, user: User, channel: str) -> list[str]:
    """Every message text of a channel through the API, walking back from the newest page."""
    texts: list[str] = []
    before: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if before:
            params["before"] = before
        page = await http.get(
            f"/v1/channels/{channel}/messages", params=params, headers=user.headers
        )
        assert page.status_code == 200, page.text
        data = page.json()["data"]
        texts = [m["text"] for m in data] + texts
        if len(data) < 200:
            return texts
        before = data[0]["id"]


async def kill_mid_reencrypt(server: ServerThread) -> None:
    """Start `keys reencrypt`, kill -9 it once it has saved progress in the rows phase."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "bastion"),
        *("keys", "reencrypt", "--batch", "20", "--throttle", "0.2"),
        env=cli_env(server),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            rows = sql(server, "SELECT phase, done FROM key_jobs WHERE name = 'reencrypt'")
            if rows and rows[0][0] == "rows" and rows[0][1] >= 40:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("reencrypt never reached the rows phase")
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    state = sql(server, "SELECT state, phase FROM key_jobs WHERE name = 'reencrypt'")
    assert state == [("running", "rows")]


async def test_rotation_under_load_with_a_crash(rotating_server: ServerThread) -> None:
    """Before, during and after rotate → rewrap → reencrypt (crashed, resumed): all reads back."""
    server = rotating_server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
        tenant = new_tenant(server, http)
        alice = await tenant.user("alice", display_name="Alice Rotation")
        bob = await tenant.user("bob")
        channels = [str((await tenant.channel(alice, [bob], name=f"c{i}"))["id"]) for i in range(3)]
        before = [f"before {i}" for i in range(240)]
        for i, text in enumerate(before):
            await tenant.send(alice, channels[i % 3], text)
        old_key = sql(
            server,
            "SELECT id, app_id, owner_kind, owner_id, purpose, kek_version, wrapped "
            "FROM data_keys WHERE owner_id = :c AND purpose = 'data'",
            c=channels[0],
        )[0]
        stop = asyncio.Event()
        load = asyncio.create_task(writer(tenant, bob, channels, stop))

        rotated = await bastion(server, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        rewrapped = await bastion(server, "keys", "rewrap")
        assert rewrapped.returncode == 0, rewrapped.stderr
        versions = sql(
            server, "SELECT DISTINCT kek_version FROM data_keys WHERE wrapped IS NOT NULL"
        )
        assert versions == [(2,)]
        await kill_mid_reencrypt(server)
        resumed = await bastion(server, "keys", "reencrypt", "--batch", "50")
        assert resumed.returncode == 0, resumed.stderr
        assert "complete" in resumed.stdout

        stop.set()
        during = await load
        after = [f"after {i}" for i in range(30)]
        for i, text in enumerate(after):
            await tenant.send(alice, channels[i % 3], text)

        seen: list[str] = []
        for channel in channels:
            seen += await all_texts(http, alice, channel)
        assert sorted(seen) == sorted([*before, *during, *after])
        assert len(during) > 10
        me = await http.get("/v1/users/me", headers=alice.headers)
        assert me.json()["display_name"] == "Alice Rotation"

    # Every value is under its owner's newest key; the keys replaced are destroyed.
    bodies = sql(server, "SELECT body, channel_id FROM messages WHERE app_id = :a", a=tenant.app_id)
    live = dict(
        sql(
            server,
            "SELECT owner_id, id FROM data_keys WHERE app_id = :a AND purpose = 'data' "
            "AND owner_kind = 'channel' AND wrapped IS NOT NULL",
            a=tenant.app_id,
        )
    )
    assert all(key_id_of(body) == live[channel] for body, channel in bodies)
    old_state = sql(server, "SELECT wrapped FROM data_keys WHERE id = :id", id=old_key[0])
    assert old_state == [(None,)]

    # Retire v1: allowed now that nothing is wrapped under it; a saved v1 wrapping is dead.
    retired = await bastion(server, "keys", "retire", "--min-version", "2")
    assert retired.returncode == 0, retired.stderr
    key_id, app_id, kind, owner_id, purpose, version, wrapped = old_key
    assert version == 1
    ring = key_source(server.settings)
    with pytest.raises(KeyUnavailable, match="retired"):
        ring.unwrap(
            app_id, version, wrapped, key_aad(app_id, key_id, Owner(kind, owner_id), purpose)
        )
    status = await bastion(server, "keys", "status")
    assert "kek v2" in status.stdout
    assert "primary" in status.stdout
    check = await bastion(server, "keys", "check")
    assert check.returncode == 0, check.stderr


async def test_reencrypt_seals_and_rekeys_totp_secrets(
    databases: Databases, tmp_path: Path
) -> None:
    """A TOTP secret an older node wrote in the clear is sealed by the job, under the
    user's new data key, and still opens to the same secret."""
    settings = make_settings(tmp_path, databases.new(), encryption={"dek_cache_seconds": 0.1})
    db = database(settings)
    app_id, user_id = new_id(Kind.APP), new_id(Kind.USER)
    try:
        await migrate.upgrade(db.engine)
        await legacy_login(db, app_id, user_id)
        assert isinstance(db.cipher, EnvelopeCipher)
        job = await Reencryption(db, db.cipher, SystemClock(), batch=10).run()
        assert job.state == "done"
        query = select(login_credentials.c.totp_secret).where(
            login_credentials.c.user_id == user_id
        )
        async with db.read() as conn:
            stored = str((await conn.execute(query)).scalar_one())
            assert stored.startswith("e1.dek_")
            assert SECRET not in stored
            assert await logins.totp_secret(conn, app_id, user_id) == SECRET
    finally:
        await db.close()
