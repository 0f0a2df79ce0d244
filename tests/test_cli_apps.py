"""``bastion apps``: list, show, rename, disable and enable apps from the shell, each change
audited; a disabled app gets no tokens and the tokens it holds stop working."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from tests.http.test_websocket import closed_with
from tests.support.audit import block_audit_inserts, unblock_audit_inserts
from tests.support.cli import bastion
from tests.support.operators import execute_sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.ws import Socket, socket


def run_json(server: ServerThread, *args: str) -> Any:
    """``bastion <args> --json``, which must succeed; its output parsed."""
    result = bastion(server, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def keep_talking(sock: Socket) -> None:
    """Send a ping every second until the socket closes."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await sock.send({"type": "ping", "id": "alive"})
            await asyncio.sleep(1)


async def status_of(http: httpx.AsyncClient, token: str) -> int:
    """The status of a read with ``token`` (200 while it works, 401 once refused)."""
    response = await http.get("/v1/app", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def refused_within(http: httpx.AsyncClient, token: str, seconds: float) -> bool:
    """Whether ``token`` is refused (401) within ``seconds``: another process (the
    command line) disabled the app, and servers re-read that every couple of seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await status_of(http, token) == 401:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_list_show_and_rename(server: ServerThread, tenant: Tenant) -> None:
    """The app is listed and shown with its counts; a rename is what ``show`` then says."""
    await tenant.user("alice")
    listed = run_json(server, "apps", "list")
    mine = [app for app in listed if app["id"] == tenant.app_id]
    assert mine == [
        {
            "id": tenant.app_id,
            "name": "test app",
            "status": "active",
            "created_at": mine[0]["created_at"],
        }
    ]
    shown = run_json(server, "apps", "show", tenant.app_id)
    assert (shown["users"], shown["clients"], shown["status"]) == (1, 1, "active")
    renamed = run_json(server, "apps", "rename", tenant.app_id, "--name", "  Renamed  ")
    assert renamed["name"] == "Renamed"
    assert run_json(server, "apps", "show", tenant.app_id)["name"] == "Renamed"
    text = bastion(server, "apps", "show", tenant.app_id)
    assert f"id: {tenant.app_id}" in text.stdout.splitlines()
    lines = bastion(server, "apps", "list").stdout.splitlines()
    assert f"{tenant.app_id}  active    {mine[0]['created_at']}  Renamed" in lines


async def test_unknown_apps_and_bad_names_are_refused(server: ServerThread, tenant: Tenant) -> None:
    """An unknown app is exit 1 with one line; an empty or too long name is exit 2."""
    for command in (["show"], ["disable"], ["enable"], ["rename", "--name", "x"]):
        missing = bastion(
            server, "apps", *command[:1], "app_00000000000000000000000000", *command[1:]
        )
        assert missing.returncode == 1, missing.stderr
        assert "No app app_00000000000000000000000000" in missing.stderr
        assert "Traceback" not in missing.stderr
    for name in ("   ", "x" * 201):
        bad = bastion(server, "apps", "rename", tenant.app_id, "--name", name)
        assert bad.returncode == 2
        assert "name: An app name has 1 to 200 characters." in bad.stderr
    assert run_json(server, "apps", "show", tenant.app_id)["name"] == "test app"


async def test_each_change_is_audited_as_the_operators(
    server: ServerThread, tenant: Tenant
) -> None:
    """Rename, disable and enable each leave one admin.change record by the operator;
    repeating a change that changes nothing leaves none."""
    run_json(server, "apps", "rename", tenant.app_id, "--name", "Acme")
    run_json(server, "apps", "disable", tenant.app_id)
    run_json(server, "apps", "disable", tenant.app_id)
    run_json(server, "apps", "enable", tenant.app_id)
    exported = bastion(server, "audit", "export", "--app", tenant.app_id)
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    changes = [r for r in records if r["resource"] == f"app:{tenant.app_id}"]
    assert [(r["action"], r["subject"], r["details"]["change"]) for r in changes] == [
        ("admin.change", "operator", "app.rename"),
        ("admin.change", "operator", "app.disable"),
        ("admin.change", "operator", "app.enable"),
    ]
    assert changes[0]["details"]["before"] == "test app (active)"
    assert changes[1]["details"]["after"] == "Acme (disabled)"


async def test_a_change_the_audit_log_cannot_record_is_not_made(
    server: ServerThread, tenant: Tenant
) -> None:
    """Fail closed: with audit inserts failing, the rename exits 1 and nothing changes."""
    url = server.settings.database_url
    execute_sql(url, *block_audit_inserts(url))
    try:
        renamed = bastion(server, "apps", "rename", tenant.app_id, "--name", "Unrecorded")
    finally:
        execute_sql(url, *unblock_audit_inserts(url))
    assert renamed.returncode == 1
    assert "The audit log could not record this command" in renamed.stderr
    assert run_json(server, "apps", "show", tenant.app_id)["name"] == "test app"


async def test_a_disabled_app_gets_no_tokens_and_its_tokens_stop_working(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Disabled: the token endpoint refuses its client, its backend and user tokens are
    refused, its sockets close; another app is untouched. Enabled again: new tokens work,
    the tokens issued before it was disabled stay refused."""
    alice = await tenant.user("alice")
    backend = await tenant.backend_token()
    other = await other_tenant.backend_token()
    assert await status_of(tenant.http, backend) == 200
    async with socket(server.ws_url, alice.token) as phone:
        # The phone keeps talking, so the server closes it for the revocation, not silence.
        talking = asyncio.create_task(keep_talking(phone))
        disabled = await asyncio.to_thread(run_json, server, "apps", "disable", tenant.app_id)
        assert disabled["status"] == "disabled"
        assert "disabled_at" in disabled
        assert (await closed_with(phone.connection, within=15.0))[0] == 4001
        talking.cancel()
    assert await refused_within(tenant.http, backend, 15.0)
    assert await status_of(tenant.http, alice.token) == 401
    refused = await tenant.token_request(grant_type="client_credentials")
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert await status_of(tenant.http, other) == 200

    run_json(server, "apps", "enable", tenant.app_id)
    await asyncio.sleep(1.05 - (time.time() % 1))  # a new second: iat is whole seconds
    fresh = await tenant.token_request(grant_type="client_credentials")
    assert fresh.status_code == 200, fresh.text
    deadline = time.monotonic() + 15.0  # nodes re-read app state every 2 s; CI is busy
    while await status_of(tenant.http, fresh.json()["access_token"]) != 200:
        assert time.monotonic() < deadline, "the enabled app's new token is still refused"
        await asyncio.sleep(0.1)
    assert await status_of(tenant.http, backend) == 401
