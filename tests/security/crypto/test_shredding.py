"""Crypto-shredding: a destroyed user or channel key leaves its data unreadable, even when an
old backup brings the wrapped key back, and the operation is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx

from bastion.app import key_source
from bastion.core.clock import SystemClock
from bastion.observe.events import MemorySink, SecurityEvents
from bastion.security.crypto import backups
from bastion.security.crypto.shredding import shred
from bastion.store.sealing import ERASED, Owner
from tests.conftest import Databases, make_settings, start_server
from tests.support.raw import cipher, sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant


def _shred(server: ServerThread, tenant: Tenant, owner: Owner) -> MemorySink:
    sink = MemorySink()
    events = SecurityEvents(SystemClock(), [sink])
    count = server.run(
        shred(server.services.db, cipher(server), events, tenant.app_id, owner, SystemClock().now())
    )
    assert count >= 1
    return sink


async def test_shredding_a_user_erases_their_personal_data(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The display name reads as erased; other users are untouched; the event is emitted."""
    alice = await tenant.user("alice", display_name="Alice A. <alice@corp.example>")
    bob = await tenant.user("bob", display_name="Bob")
    sink = _shred(server, tenant, Owner("user", alice.id))
    shown = await http.get(f"/v1/users/{alice.id}", headers=await tenant.backend_headers())
    assert shown.status_code == 200
    assert shown.json()["display_name"] == ERASED
    assert (await http.get("/v1/users/me", headers=bob.headers)).json()["display_name"] == "Bob"
    [event] = sink.of("key.shred")
    assert event.resource == f"user:{alice.id}"
    assert event.actor.app_id == tenant.app_id
    assert "alice@corp.example" not in str(event.as_dict())
    rows = sql(
        server, "SELECT wrapped, destroyed_at FROM data_keys WHERE owner_id = :o", o=alice.id
    )
    assert rows
    assert all(wrapped is None and destroyed is not None for wrapped, destroyed in rows)


async def test_shredding_a_channel_erases_messages_and_search(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Every message reads as erased, the index is gone, other channels are untouched."""
    alice = await tenant.user("alice")
    doomed = str((await tenant.channel(alice, [], name="doomed"))["id"])
    kept = str((await tenant.channel(alice, [], name="kept"))["id"])
    for text in ("the merger closes friday", "do not tell anyone about the merger"):
        await tenant.send(alice, doomed, text)
    await tenant.send(alice, kept, "merger rumours are false")
    _shred(server, tenant, Owner("channel", doomed))
    page = await http.get(f"/v1/channels/{doomed}/messages", headers=alice.headers)
    assert [m["text"] for m in page.json()["data"]] == [ERASED, ERASED]
    found = await http.get("/v1/search/messages", params={"q": "merger"}, headers=alice.headers)
    assert [m["channel_id"] for m in found.json()["data"]] == [kept]


async def test_an_old_backup_does_not_bring_shredded_data_back(
    databases: Databases, tmp_path: Path
) -> None:
    """Back up, shred, restore the old backup and serve it with the same keyring: erased."""
    settings = make_settings(tmp_path / "data", databases.new())
    server = await asyncio.to_thread(start_server, settings)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            tenant = new_tenant(server, http)
            alice = await tenant.user("alice")
            channel = str((await tenant.channel(alice, [], name="c"))["id"])
            await tenant.send(alice, channel, "a secret that must be forgotten")
            old = backups.create(
                settings.database_url,
                key_source(settings),
                tmp_path / "backups",
                now=dt.datetime.now(dt.UTC),
                chunk_bytes=65536,
                keep=2,
            )
            _shred(server, tenant, Owner("channel", channel))
    finally:
        await asyncio.to_thread(server.stop)
    restored_url = databases.new()
    await asyncio.to_thread(backups.restore, old.path, key_source(settings), restored_url)
    revived = await asyncio.to_thread(start_server, make_settings(tmp_path / "data", restored_url))
    try:
        async with httpx.AsyncClient(base_url=revived.base_url, timeout=10) as http:
            token = await Tenant(
                revived, http, tenant.app_id, tenant.client_id, tenant.client_secret
            ).user_token(alice.id)
            page = await http.get(
                f"/v1/channels/{channel}/messages", headers={"Authorization": f"Bearer {token}"}
            )
            assert page.status_code == 200, page.text
            assert [m["text"] for m in page.json()["data"]] == [ERASED]
    finally:
        await asyncio.to_thread(revived.stop)
