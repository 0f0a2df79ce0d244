"""Fail closed: with the audit log unwritable, changes are refused with 503 and not made."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.core.errors import Forbidden
from bastion.observe.events import Actor
from bastion.security import scopes
from bastion.security.audit.operators import create_operator_client
from tests.conftest import Databases, make_settings, start_server
from tests.support.audit import block_audit_inserts, unblock_audit_inserts
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


@pytest.mark.parametrize("reads_fail_closed", [False, True])
def test_audited_reads_follow_the_setting(
    databases: Databases, tmp_path: Path, reads_fail_closed: bool
) -> None:
    """An audited read (the auditor API) is served or refused as audit.reads_fail_closed says."""
    settings = make_settings(
        tmp_path, databases.new(), audit={"reads_fail_closed": reads_fail_closed}
    )
    server = start_server(settings)
    try:
        created = server.run(
            create_app(server.services.db, secret_hasher(settings), SystemClock(), name="t")
        )
        client = server.run(
            create_operator_client(
                server.services.db,
                secret_hasher(settings),
                SystemClock(),
                app_id=created.app.id,
                granted=frozenset({scopes.AUDIT_READ}),
            )
        )
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            grant = {"grant_type": "client_credentials"}
            token = http.post(
                "/oauth/token", data=grant, auth=(client.client_id, client.secret)
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            backend_token = http.post(
                "/oauth/token", data=grant, auth=(created.client.id, created.client_secret)
            ).json()["access_token"]
            backend = {"Authorization": f"Bearer {backend_token}"}
            execute_sql(settings.database_url, *block_audit_inserts(settings.database_url))
            try:
                read = http.get("/v1/audit/events", headers=headers)
                write = http.post(
                    "/v1/users",
                    json={"external_id": "x", "display_name": "x"},
                    headers=backend,
                )
            finally:
                execute_sql(settings.database_url, *unblock_audit_inserts(settings.database_url))
        assert read.status_code == (503 if reads_fail_closed else 200)
        assert write.status_code == 503  # a change without its record: never
    finally:
        server.stop()


async def test_a_denial_inside_a_rolled_back_transaction_is_still_recorded(
    server: ServerThread, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Events emitted inside a transaction that rolls back are appended on their own."""
    services = server.services

    async def denied_command() -> None:
        async with services.db.write():
            await services.events.emit(
                "authz.decision",
                "denied",
                actor=Actor(app_id=tenant.app_id, subject="usr_x"),
                resource="channel:ch_x",
                reason="not_a_member",
            )
            raise Forbidden("Not a member.")

    with pytest.raises(Forbidden):
        server.run(denied_command())
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    found = await http.get("/v1/audit/events", params={"action": "authz.decision"}, headers=auditor)
    (event,) = found.json()["data"]
    assert (event["outcome"], event["reason"], event["resource"]) == (
        "denied",
        "not_a_member",
        "channel:ch_x",
    )
