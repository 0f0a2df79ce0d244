"""The README quickstart, step by step, through real HTTP and a real WebSocket."""

from __future__ import annotations

import httpx

from bastion.security.oauth import rfc8693
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.ws import socket


async def test_quickstart(http: httpx.AsyncClient, server: ServerThread, tenant: Tenant) -> None:
    """App token → two users → user tokens → channel → send → receive live."""
    token = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert token.status_code == 200
    assert token.headers["cache-control"] == "no-store"
    backend = {"Authorization": f"Bearer {token.json()['access_token']}"}

    ids = {}
    for name in ("alice", "bob"):
        created = await http.post(
            "/v1/users", json={"external_id": name, "display_name": name.title()}, headers=backend
        )
        assert created.status_code == 201
        ids[name] = created.json()["id"]

    tokens = {}
    for name in ("alice", "bob"):
        exchanged = await http.post(
            "/oauth/token",
            data={
                "grant_type": rfc8693.GRANT_TYPE,
                "subject_token": name,
                "subject_token_type": rfc8693.EXTERNAL_ID_TYPE,
            },
            auth=(tenant.client_id, tenant.client_secret),
        )
        assert exchanged.status_code == 200
        assert exchanged.json()["issued_token_type"] == rfc8693.ACCESS_TOKEN_TYPE
        tokens[name] = exchanged.json()["access_token"]
    alice = {"Authorization": f"Bearer {tokens['alice']}"}

    channel = await http.post(
        "/v1/channels",
        json={"type": "group", "name": "Project X", "members": [ids["bob"]]},
        headers=alice,
    )
    assert channel.status_code == 201
    channel_id = channel.json()["id"]

    async with socket(server.ws_url, tokens["bob"]) as bob_socket:
        assert bob_socket.ready["data"]["user_id"] == ids["bob"]
        sent = await http.post(
            f"/v1/channels/{channel_id}/messages", json={"text": "Hello, Bob!"}, headers=alice
        )
        assert sent.status_code == 201
        event = await bob_socket.expect("message.new")
    assert event["data"]["id"] == sent.json()["id"]
    assert event["data"]["text"] == "Hello, Bob!"
    assert event["channel_id"] == channel_id
    assert event["seq"] >= 1
