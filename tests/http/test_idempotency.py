"""``Idempotency-Key`` on every create: retries replay, different requests are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from bastion.core.clock import SystemClock
from bastion.core.errors import Conflict
from bastion.http.idempotency import Idempotency
from bastion.security.principal import Principal
from bastion.store import migrate
from bastion.store.db import Database, create_engine
from bastion.store.repos import idempotency as idempotency_repo
from tests.support.tenants import Tenant


async def test_a_retried_send_replays_the_first_answer(tenant: Tenant) -> None:
    """Same key, same body: the same message comes back, marked as a replay, stored once."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/messages"
    headers = {**alice.headers, "Idempotency-Key": "send-1"}
    first = await tenant.http.post(url, json={"text": "once"}, headers=headers)
    again = await tenant.http.post(url, json={"text": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    page = (await tenant.http.get(url, headers=alice.headers)).json()
    assert [m["text"] for m in page["data"]] == ["once"]


async def test_the_same_key_with_another_body_is_422(tenant: Tenant) -> None:
    """A key reused for a different request is refused and creates nothing."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])
    url = f"/v1/channels/{channel['id']}/messages"
    headers = {**alice.headers, "Idempotency-Key": "send-2"}
    assert (await tenant.http.post(url, json={"text": "a"}, headers=headers)).status_code == 201
    other = await tenant.http.post(url, json={"text": "b"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in other.json()["errors"]] == ["header.Idempotency-Key"]
    page = (await tenant.http.get(url, headers=alice.headers)).json()
    assert [m["text"] for m in page["data"]] == ["a"]


async def test_keys_belong_to_their_caller(tenant: Tenant, other_tenant: Tenant) -> None:
    """Two users (or two apps) using the same key do not see each other's answers."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    carol = await other_tenant.user("carol")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/messages"
    sent_by_alice = await tenant.http.post(
        url, json={"text": "hi"}, headers={**alice.headers, "Idempotency-Key": "k"}
    )
    sent_by_bob = await tenant.http.post(
        url, json={"text": "hi"}, headers={**bob.headers, "Idempotency-Key": "k"}
    )
    assert sent_by_alice.json()["id"] != sent_by_bob.json()["id"]
    assert sent_by_bob.json()["author_id"] == bob.id
    created = await other_tenant.http.post(
        "/v1/channels",
        json={"type": "group", "name": "k", "members": []},
        headers={**carol.headers, "Idempotency-Key": "k"},
    )
    assert created.status_code == 201
    assert "idempotent-replayed" not in created.headers


async def test_user_and_channel_creation_replay(tenant: Tenant) -> None:
    """Backend user creation and channel creation honour the key too (no 409 on retry)."""
    backend = {**(await tenant.backend_headers()), "Idempotency-Key": "user-ann"}
    body = {"external_id": "ann", "display_name": "Ann"}
    first = await tenant.http.post("/v1/users", json=body, headers=backend)
    again = await tenant.http.post("/v1/users", json=body, headers=backend)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    alice = await tenant.user("alice")
    headers = {**alice.headers, "Idempotency-Key": "room"}
    room = {"type": "group", "name": "room", "members": []}
    one = await tenant.http.post("/v1/channels", json=room, headers=headers)
    two = await tenant.http.post("/v1/channels", json=room, headers=headers)
    assert one.json()["id"] == two.json()["id"]
    listed = (await tenant.http.get("/v1/channels", headers=alice.headers)).json()["data"]
    assert [c["id"] for c in listed] == [one.json()["id"]]


async def test_failures_are_not_stored(tenant: Tenant) -> None:
    """A refused request can be retried with its key once the cause is fixed."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [])
    url = f"/v1/channels/{channel['id']}/members"
    headers = {**alice.headers, "Idempotency-Key": "add-bob"}
    refused = await tenant.http.post(
        url,
        json={"user_id": bob.id, "role": "owner"},
        headers={**bob.headers, "Idempotency-Key": "add-bob"},
    )
    assert refused.status_code == 404
    added = await tenant.http.post(url, json={"user_id": bob.id}, headers=headers)
    replayed = await tenant.http.post(url, json={"user_id": bob.id}, headers=headers)
    assert (added.status_code, replayed.status_code) == (201, 201)
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_concurrent_requests_with_one_key_create_once(tenant: Tenant) -> None:
    """Racing requests with one key: one creates; the others replay it or get 409."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])
    url = f"/v1/channels/{channel['id']}/messages"
    rounds = 10
    for n in range(rounds):
        headers = {**alice.headers, "Idempotency-Key": f"race-{n}"}
        answers = await asyncio.gather(
            *(tenant.http.post(url, json={"text": f"race {n}"}, headers=headers) for _ in range(8))
        )
        assert {a.status_code for a in answers} <= {201, 409}
        assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    page = (await tenant.http.get(url, headers=alice.headers, params={"limit": 50})).json()
    assert sorted(m["text"] for m in page["data"]) == sorted(f"race {n}" for n in range(rounds))


async def test_malformed_keys_are_400(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A key must be 1 to 255 visible ASCII characters."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])
    url = f"/v1/channels/{channel['id']}/messages"
    for key in (b"x" * 256, b"has space", "\u00fcn\u00efcode".encode()):
        headers = [
            (b"authorization", alice.headers["Authorization"].encode()),
            (b"idempotency-key", key),
        ]
        response = await http.post(url, json={"text": "t"}, headers=headers)
        assert response.status_code == 400, key
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_read_that_outlives_the_first_request_does_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that starts before the first answer is stored and ends after must not rerun."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}")
    await migrate.upgrade(engine)
    db = Database(engine)
    keys = Idempotency(db, SystemClock(), ttl_seconds=60)
    caller = Principal("app_1", "cli_1", "usr_1", frozenset(), "tok_1", 0)
    first_done = asyncio.Event()
    real_get = idempotency_repo.get
    lookups = 0

    async def slow_second_lookup(*args: Any) -> Any:
        nonlocal lookups
        lookups += 1
        found = await real_get(*args)
        if lookups == 2:
            await first_done.wait()
        return found

    monkeypatch.setattr(idempotency_repo, "get", slow_second_lookup)
    runs = 0

    async def run() -> Response:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return Response(b"{}", status_code=201, media_type="application/json")

    async def first() -> Response:
        try:
            return await keys.once(_post_request(), caller, "k", run)
        finally:
            first_done.set()

    try:
        answers = await asyncio.gather(
            first(), keys.once(_post_request(), caller, "k", run), return_exceptions=True
        )
    finally:
        await db.close()
    assert runs == 1
    assert isinstance(answers[0], Response)
    assert answers[0].status_code == 201
    assert isinstance(answers[1], Conflict)


def _post_request() -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": [], "query_string": b""}
    return Request(scope, receive)
