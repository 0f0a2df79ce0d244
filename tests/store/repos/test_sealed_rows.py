"""Batched rewrites of sealed values (re-encryption): a value edited since the scan wins."""

from __future__ import annotations

import httpx

from bastion.store.repos import sealed_rows
from bastion.store.sealing import Cell, Owner
from tests.support.raw import cipher, sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

BODY = sealed_rows.SEALED_COLUMNS[0]


def _scan(server: ServerThread, ids: set[str]) -> list[sealed_rows.SealedRow]:
    async def run() -> list[sealed_rows.SealedRow]:
        async with server.services.db.read() as conn:
            return [r for r in await sealed_rows.scan(conn, BODY, "", 10_000) if r.row_id in ids]

    return server.run(run())


def _reseal(server: ServerThread, channel: str, rows: list[sealed_rows.SealedRow]) -> None:
    """Open and seal each scanned value again, then write the batch in one statement."""
    column_cipher = cipher(server)

    async def run() -> None:
        async with server.services.db.write() as conn:
            changes = []
            for row in rows:
                cell = Cell(row.app_id, "messages", "body", row.row_id)
                plaintext = await column_cipher.open(conn, cell, row.value)
                sealed = await column_cipher.seal(conn, cell, Owner("channel", channel), plaintext)
                changes.append(sealed_rows.Rewrite(row.row_id, row.value, sealed))
            await sealed_rows.rewrite(conn, BODY, changes)

    server.run(run())


async def test_a_batch_rewrite_skips_a_value_edited_since_the_scan(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The untouched message is re-sealed; the edited one keeps its edit, not the old text."""
    alice = await tenant.user("alice")
    channel = str((await tenant.channel(alice, [], name="c"))["id"])
    first = str((await tenant.send(alice, channel, "first words"))["id"])
    second = str((await tenant.send(alice, channel, "second words"))["id"])
    scanned = _scan(server, {first, second})
    assert len(scanned) == 2
    edited = await http.patch(
        f"/v1/messages/{second}",
        json={"text": "edited words"},
        headers={**alice.headers, "If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    edited_body = sql(server, "SELECT body FROM messages WHERE id = :i", i=second)
    _reseal(server, channel, scanned)
    old_first = next(r.value for r in scanned if r.row_id == first)
    assert sql(server, "SELECT body FROM messages WHERE id = :i", i=first) != [(old_first,)]
    assert sql(server, "SELECT body FROM messages WHERE id = :i", i=second) == edited_body
    page = await http.get(f"/v1/channels/{channel}/messages", headers=alice.headers)
    assert [m["text"] for m in page.json()["data"]] == ["first words", "edited words"]
