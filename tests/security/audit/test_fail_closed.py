"""Fail closed: with the audit log unwritable, changes are refused with 503 and not made."""

from __future__ import annotations

import httpx

from bastion.security import scopes
from tests.support.operators import execute_sql, operator_headers
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def _message_texts(
    http: httpx.AsyncClient, headers: dict[str, str], channel: str
) -> list[str]:
    response = await http.get(f"/v1/channels/{channel}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return [m["text"] for m in response.json()["data"]]


async def test_a_send_fails_with_503_and_stores_nothing(
    tenant: Tenant, http: httpx.AsyncClient, server: ServerThread
) -> None:
    """The message's transaction rolls back with its audit record; reads still work."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = (await tenant.channel(alice, [bob]))["id"]
    execute_sql(server.settings.database_url, "ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        response = await http.post(
            f"/v1/channels/{channel}/messages", json={"text": "unaudited"}, headers=alice.headers
        )
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "audit" in response.json()["detail"]
        rename = await http.patch(
            f"/v1/channels/{channel}", json={"name": "renamed"}, headers=alice.headers
        )
        assert rename.status_code == 503
        # Reads are served: they change nothing (and reads_fail_closed is off).
        assert await _message_texts(http, bob.headers, channel) == []
    finally:
        execute_sql(server.settings.database_url, "ALTER TABLE audit_log_away RENAME TO audit_log")
    channel_now = await http.get(f"/v1/channels/{channel}", headers=alice.headers)
    assert channel_now.json()["name"] == "room"
    assert await _message_texts(http, bob.headers, channel) == []
    sent = await http.post(
        f"/v1/channels/{channel}/messages", json={"text": "audited"}, headers=alice.headers
    )
    assert sent.status_code == 201
    assert await _message_texts(http, bob.headers, channel) == ["audited"]


async def test_every_change_has_its_record(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """A send commits with a data.change record naming route, caller and channel."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = (await tenant.channel(alice, [bob]))["id"]
    await tenant.send(alice, channel, "hello there")
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    response = await http.get(
        "/v1/audit/events",
        params={"action": "data.change", "subject": alice.id},
        headers=auditor,
    )
    assert response.status_code == 200, response.text
    changes = response.json()["data"]
    send = next(c for c in changes if c["details"]["route"].endswith("/messages"))
    assert send["details"]["method"] == "POST"
    assert send["details"]["route"] == "/v1/channels/{channel_id}/messages"
    assert send["resource"] == f"channel:{channel}"
    assert send["client_id"] == tenant.client_id
    assert send["request_id"].startswith("req_")
    assert "hello there" not in response.text
