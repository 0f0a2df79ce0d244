"""The WebSocket endpoint ``/v1/ws`` through real connections to a real server."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bastion.security.oauth import rfc8693
from tests.conftest import Databases, make_settings, start_server
from tests.support import tokens
from tests.support.messaging import archive
from tests.support.roles import user_with_roles
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant
from tests.support.ws import Socket, closed, socket

BEFORE_START = "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV"  # a 2016 ULID: older than any server
STRICT_AUTH_TIMEOUT = 0.5
STRICT_MAX_SOCKETS = 2


# --- helpers ---------------------------------------------------------------------------------


async def closed_with(connection: ClientConnection, within: float = 5.0) -> tuple[int, list[Any]]:
    """Read until the server closes; its close code and every frame received before."""
    code, _reason, frames = await closed(connection, within)
    return code, list(frames)


async def refused(
    url: str,
    *,
    token: str | None = None,
    first: str | bytes | None = None,
    within: float = 5.0,
) -> tuple[int, list[Any]]:
    """Connect (token in the header if given), optionally send one frame, await the close."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with connect(url, additional_headers=headers, open_timeout=5) as connection:
        if first is not None:
            await connection.send(first)
        return await closed_with(connection, within)


def not_ready(frames: list[Any]) -> bool:
    """No ``ready`` frame (nor any event) was sent before the close."""
    return all(frame.get("type") == "ping" for frame in frames)


async def is_open(sock: Socket, command_id: str = "still-open") -> bool:
    """The socket still answers commands."""
    await sock.send({"type": "ping", "id": command_id})
    return await sock.expect("pong") == {"type": "pong", "id": command_id, "data": {}}


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT."""
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def crafted(server: ServerThread, tenant: Tenant, user: User, **overrides: Any) -> dict[str, Any]:
    """Valid-looking claims for ``user`` as the server itself would issue them."""
    settings = server.settings
    fields: dict[str, Any] = {
        "issuer": settings.issuer,
        "audience": settings.audience,
        "app_id": tenant.app_id,
        "subject": user.id,
        "client_id": tenant.client_id,
        "scope": "chat:read chat:write",
    }
    fields.update(overrides)
    return tokens.claims_for(**fields)


async def scoped_token(tenant: Tenant, user: User, scope: str) -> str:
    """A real exchanged token for ``user`` with only ``scope``."""
    response = await tenant.token_request(
        grant_type=rfc8693.GRANT_TYPE,
        subject_token=user.id,
        subject_token_type=rfc8693.USER_ID_TYPE,
        scope=scope,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def assert_consecutive(frames: list[dict[str, Any]]) -> None:
    """Events on one connection are numbered 1, 2, 3... with no gap or repeat."""
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def assert_problem(frame: dict[str, Any], status: int, type_: str, command_id: str | None) -> None:
    """An ``error`` frame carrying RFC 9457 problem fields."""
    assert frame["type"] == "error"
    assert frame["id"] == command_id
    problem = frame["data"]
    assert problem["status"] == status
    assert problem["type"].endswith(f"/{type_}")
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]


# --- a second server with strict realtime limits ---------------------------------------------


@pytest.fixture(scope="module")
def strict_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with a short auth timeout and a small per-user socket cap."""
    data_dir: Path = tmp_path_factory.mktemp("strict")
    settings = make_settings(
        data_dir,
        databases.new(),
        realtime={
            "auth_timeout_seconds": STRICT_AUTH_TIMEOUT,
            "max_connections_per_user": STRICT_MAX_SOCKETS,
            "heartbeat_seconds": 2.0,
        },
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def strict_tenant(strict_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the strict server."""
    async with httpx.AsyncClient(base_url=strict_server.base_url, timeout=10) as client:
        yield new_tenant(strict_server, client)


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["header", "frame"])
async def test_authenticates_by_header_or_first_frame(
    server: ServerThread, tenant: Tenant, via: str
) -> None:
    """A user token in the Authorization header or a first auth frame yields `ready`."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token, via=via) as sock:
        ready = sock.ready
        assert ready["type"] == "ready"
        assert ready["data"]["user_id"] == bob.id
        assert ready["data"]["connection_id"].startswith("conn_")
        assert ready["data"]["heartbeat_seconds"] == 2.0
        assert "seq" not in ready
        assert await is_open(sock)


async def test_auth_frame_may_carry_the_token_in_data(server: ServerThread, tenant: Tenant) -> None:
    """`{"type": "auth", "data": {"token": ...}}` is accepted like the top-level form."""
    bob = await tenant.user("bob")
    async with connect(server.ws_url, open_timeout=5) as connection:
        await connection.send(json.dumps({"type": "auth", "data": {"token": bob.token}}))
        ready = json.loads(await asyncio.wait_for(connection.recv(), 5))
    assert ready["type"] == "ready"
    assert ready["data"]["user_id"] == bob.id


async def test_no_token_and_no_auth_frame_is_closed_4001(
    strict_server: ServerThread, strict_tenant: Tenant
) -> None:
    """A client that never authenticates is closed with 4001 once the auth timeout passes."""
    started = time.monotonic()
    code, frames = await refused(strict_server.ws_url, within=STRICT_AUTH_TIMEOUT + 5)
    waited = time.monotonic() - started
    assert code == 4001
    assert frames == []
    assert STRICT_AUTH_TIMEOUT * 0.8 <= waited < STRICT_AUTH_TIMEOUT + 3


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(json.dumps({"type": "ping", "id": "p"}), id="not-an-auth-frame"),
        pytest.param(json.dumps({"type": "auth"}), id="auth-without-token"),
        pytest.param(json.dumps({"type": "auth", "token": 42}), id="token-not-a-string"),
        pytest.param("{not json", id="malformed-json"),
        pytest.param(json.dumps({"type": "auth", "token": "garbage"}), id="garbage-token"),
    ],
)
async def test_a_bad_first_frame_is_closed_4001(server: ServerThread, first: str) -> None:
    """Without a header, anything but a valid auth frame first closes the socket with 4001."""
    code, frames = await refused(server.ws_url, first=first)
    assert code == 4001
    assert not_ready(frames)


INVALID_TOKENS = [
    "garbage",
    "expired",
    "forged",
    "alg-none",
    "hmac-confusion",
    "tampered",
    "wrong-audience",
    "other-issuer",
]


def _invalid_token(kind: str, server: ServerThread, tenant: Tenant, bob: User) -> str:
    keys = server.services.keys
    now = int(time.time())
    elsewhere = "https://elsewhere.example"
    makers: dict[str, Callable[[], str]] = {
        "garbage": lambda: "not.a.jwt",
        "expired": lambda: tokens.sign(
            keys, crafted(server, tenant, bob, ttl=-600, iat=now - 900, nbf=now - 900)
        ),
        "forged": lambda: tokens.with_stranger_key(
            crafted(server, tenant, bob), kid=keys.active.kid
        ),
        "alg-none": lambda: tokens.unsigned(crafted(server, tenant, bob)),
        "hmac-confusion": lambda: tokens.hmac_with_public_key(keys, crafted(server, tenant, bob)),
        "tampered": lambda: tokens.tamper(bob.token),
        "wrong-audience": lambda: tokens.sign(
            keys, crafted(server, tenant, bob, audience=elsewhere)
        ),
        "other-issuer": lambda: tokens.sign(keys, crafted(server, tenant, bob, issuer=elsewhere)),
    }
    return makers[kind]()


@pytest.mark.parametrize("via", ["header", "frame"])
@pytest.mark.parametrize("kind", INVALID_TOKENS)
async def test_invalid_tokens_are_closed_4001(
    server: ServerThread, tenant: Tenant, kind: str, via: str
) -> None:
    """Invalid, expired, forged or mis-addressed tokens never get `ready`: close 4001."""
    bob = await tenant.user("bob")
    token = _invalid_token(kind, server, tenant, bob)
    if via == "header":
        code, frames = await refused(server.ws_url, token=token)
    else:
        code, frames = await refused(
            server.ws_url, first=json.dumps({"type": "auth", "token": token})
        )
    assert code == 4001
    assert not_ready(frames)


async def test_a_malformed_authorization_header_is_closed_4001(server: ServerThread) -> None:
    """An Authorization header that is not `Bearer <token>` is an authentication failure."""
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    async with connect(server.ws_url, additional_headers=headers, open_timeout=5) as connection:
        code, frames = await closed_with(connection)
    assert code == 4001
    assert not_ready(frames)


async def test_backend_token_is_closed_4003(server: ServerThread, tenant: Tenant) -> None:
    """An app backend (client_credentials) token is valid but may not open a user socket."""
    code, frames = await refused(server.ws_url, token=await tenant.backend_token())
    assert code == 4003
    assert not_ready(frames)


async def test_user_token_without_chat_read_is_closed_4003(
    server: ServerThread, tenant: Tenant
) -> None:
    """A user token lacking chat:read may not receive events."""
    bob = await tenant.user("bob")
    code, frames = await refused(server.ws_url, token=await scoped_token(tenant, bob, "chat:write"))
    assert code == 4003
    assert not_ready(frames)


async def test_a_role_without_channel_read_is_closed_4003(
    server: ServerThread, tenant: Tenant
) -> None:
    """An auditor-only user has chat:read in the token but not channel:read in the role."""
    auditor = await user_with_roles(tenant, "aud", "auditor")
    code, frames = await refused(server.ws_url, token=auditor.token)
    assert code == 4003
    assert not_ready(frames)


@pytest.mark.parametrize("with_header", [False, True])
async def test_token_in_the_url_is_refused_4001(
    server: ServerThread, tenant: Tenant, with_header: bool
) -> None:
    """`?access_token=` is never accepted, not even alongside a valid header."""
    bob = await tenant.user("bob")
    url = f"{server.ws_url}?access_token={bob.token}"
    code, frames = await refused(url, token=bob.token if with_header else None)
    assert code == 4001
    assert not_ready(frames)


# --- delivery --------------------------------------------------------------------------------


async def test_members_receive_every_channel_event_and_outsiders_none(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Members get each channel event in order with seq +1; non-members and other apps nothing."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    carol, erin = await tenant.user("carol"), await tenant.user("erin")
    dave = await other_tenant.user("dave")
    channel = await tenant.channel(alice, [bob], name="room")
    await tenant.channel(alice, [carol], name="carol's room")  # carol listens to something
    await other_tenant.channel(dave, [], name="dave's room")
    cid = channel["id"]

    async with (
        socket(server.ws_url, alice.token) as alice_ws,
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, carol.token) as carol_ws,
        socket(server.ws_url, dave.token) as dave_ws,
    ):
        mid = await _one_of_each_event(tenant, alice_ws, cid, alice, bob, erin)
        frames = [await bob_ws.next() for _ in range(10)]
        outsiders = await carol_ws.silent(0.3) + await dave_ws.silent(0.2)

    assert [frame["type"] for frame in frames] == [
        "message.new",
        "message.updated",
        "reaction.added",
        "reaction.removed",
        "read.updated",
        "typing",
        "member.added",
        "member.removed",
        "channel.updated",
        "message.deleted",
    ]
    assert_consecutive(frames)
    assert frames[0]["seq"] == 1
    assert all(frame["channel_id"] == cid for frame in frames)
    assert all(frame["id"].startswith("evt_") for frame in frames)
    assert len({frame["id"] for frame in frames}) == len(frames)
    new, updated, r_added, r_removed, read_ev, typing, m_added, m_removed, ch_upd, gone = (
        frame["data"] for frame in frames
    )
    assert new["id"] == mid
    assert new["text"] == "hello"
    assert updated["text"] == "hello!"
    assert r_added == {
        "message_id": mid,
        "user_id": alice.id,
        "emoji": "👍",
        "reactions": {"👍": 1},
    }
    assert r_removed == {"message_id": mid, "user_id": alice.id, "emoji": "👍", "reactions": {}}
    assert read_ev["user_id"] == bob.id
    assert read_ev["last_read_message_id"] == mid
    assert typing == {"channel_id": cid, "user_id": alice.id, "state": "start"}
    assert m_added["user_id"] == erin.id
    assert m_removed == {"channel_id": cid, "user_id": erin.id}
    assert ch_upd["name"] == "renamed"
    assert gone["id"] == mid
    assert gone["deleted"] is True
    assert gone["text"] is None
    assert outsiders == []


async def _one_of_each_event(
    tenant: Tenant, alice_ws: Socket, cid: str, alice: User, bob: User, erin: User
) -> str:
    """Produce one event of every channel kind, in a known order; the message id used."""
    http = tenant.http
    message = await tenant.send(alice, cid, "hello")
    mid: str = message["id"]
    edited = await http.patch(f"/v1/messages/{mid}", json={"text": "hello!"}, headers=alice.headers)
    assert edited.status_code == 200, edited.text
    reacted = await http.put(f"/v1/messages/{mid}/reactions/👍", headers=alice.headers)
    assert reacted.status_code == 200, reacted.text
    unreacted = await http.delete(f"/v1/messages/{mid}/reactions/👍", headers=alice.headers)
    assert unreacted.status_code == 204, unreacted.text
    read = await http.put(f"/v1/channels/{cid}/read", json={"message_id": mid}, headers=bob.headers)
    assert read.status_code == 200, read.text
    await alice_ws.send({"type": "typing", "id": "t1", "data": {"channel_id": cid}})
    assert (await alice_ws.expect("ack"))["id"] == "t1"
    added = await http.post(
        f"/v1/channels/{cid}/members", json={"user_id": erin.id}, headers=alice.headers
    )
    assert added.status_code == 201, added.text
    removed = await http.delete(f"/v1/channels/{cid}/members/{erin.id}", headers=alice.headers)
    assert removed.status_code == 204, removed.text
    renamed = await http.patch(
        f"/v1/channels/{cid}", json={"name": "renamed"}, headers=alice.headers
    )
    assert renamed.status_code == 200, renamed.text
    deleted = await http.delete(f"/v1/messages/{mid}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    return mid


async def test_a_removed_member_gets_member_removed_then_nothing(
    server: ServerThread, tenant: Tenant
) -> None:
    """Removal is the last event a former member receives from the channel."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "before")
        assert (await bob_ws.next())["type"] == "message.new"
        removed = await tenant.http.delete(
            f"/v1/channels/{cid}/members/{bob.id}", headers=alice.headers
        )
        assert removed.status_code == 204
        event = await bob_ws.next()
        assert event["type"] == "member.removed"
        assert event["data"] == {"channel_id": cid, "user_id": bob.id}

        await tenant.send(alice, cid, "after you left")
        await tenant.http.patch(
            f"/v1/channels/{cid}", json={"name": "secret plans"}, headers=alice.headers
        )
        await alice_typing(server, alice, cid)
        assert await bob_ws.silent(0.4) == []
        assert await is_open(bob_ws)


async def alice_typing(server: ServerThread, alice: User, channel_id: str) -> None:
    """Alice sends a typing notification on her own socket."""
    async with socket(server.ws_url, alice.token) as alice_ws:
        await alice_ws.send({"type": "typing", "id": "t", "data": {"channel_id": channel_id}})
        assert (await alice_ws.expect("ack"))["id"] == "t"


async def test_a_member_who_leaves_gets_nothing_more(server: ServerThread, tenant: Tenant) -> None:
    """Leaving (removing oneself) also ends delivery right after member.removed."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        left = await tenant.http.delete(f"/v1/channels/{cid}/members/{bob.id}", headers=bob.headers)
        assert left.status_code == 204
        assert (await bob_ws.next())["type"] == "member.removed"
        await tenant.send(alice, cid, "gone?")
        assert await bob_ws.silent(0.4) == []


async def test_an_added_user_receives_the_channel_without_reconnecting(
    server: ServerThread, tenant: Tenant
) -> None:
    """A connected user added to a channel gets member.added, then the channel's events."""
    alice, erin = await tenant.user("alice"), await tenant.user("erin")
    cid = (await tenant.channel(alice, []))["id"]
    async with socket(server.ws_url, erin.token) as erin_ws:
        await tenant.send(alice, cid, "before erin")
        added = await tenant.http.post(
            f"/v1/channels/{cid}/members", json={"user_id": erin.id}, headers=alice.headers
        )
        assert added.status_code == 201
        welcome = await tenant.send(alice, cid, "welcome erin")

        first, second = await erin_ws.next(), await erin_ws.next()
    assert first["type"] == "member.added"
    assert first["channel_id"] == cid
    assert first["data"]["user_id"] == erin.id
    assert second["type"] == "message.new"
    assert second["data"]["id"] == welcome["id"]
    assert_consecutive([first, second])


async def test_a_new_channel_is_delivered_to_connected_members(
    server: ServerThread, tenant: Tenant
) -> None:
    """Members of a channel created while they are connected get channel.created and its events."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as bob_ws:
        channel = await tenant.channel(alice, [bob], name="fresh")
        message = await tenant.send(alice, channel["id"], "first!")
        created, new = await bob_ws.next(), await bob_ws.next()
    assert created["type"] == "channel.created"
    assert created["data"]["id"] == channel["id"]
    assert new["type"] == "message.new"
    assert new["data"]["id"] == message["id"]
    assert_consecutive([created, new])


# --- client commands -------------------------------------------------------------------------


async def test_ping_is_answered_with_pong_and_the_same_id(
    server: ServerThread, tenant: Tenant
) -> None:
    """`ping` → `pong` echoing the command id."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "ping", "id": "abc-123"})
        assert await sock.next() == {"type": "pong", "id": "abc-123", "data": {}}
        await sock.send({"type": "pong"})  # answering a server ping needs no reply
        await sock.send({"type": "ping", "id": "second"})
        assert await sock.next() == {"type": "pong", "id": "second", "data": {}}


async def test_typing_start_and_stop_are_acked_and_broadcast(
    server: ServerThread, tenant: Tenant
) -> None:
    """Typing commands are acknowledged and reach the channel's other members."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with (
        socket(server.ws_url, alice.token) as alice_ws,
        socket(server.ws_url, bob.token) as bob_ws,
    ):
        for state in ("start", "stop"):
            await alice_ws.send(
                {"type": "typing", "id": f"t-{state}", "data": {"channel_id": cid, "state": state}}
            )
            assert await alice_ws.expect("ack") == {"type": "ack", "id": f"t-{state}", "data": {}}
            event = await bob_ws.next()
            assert event["type"] == "typing"
            assert event["channel_id"] == cid
            assert event["data"] == {"channel_id": cid, "user_id": alice.id, "state": state}


async def test_read_is_acked_with_the_unread_count(server: ServerThread, tenant: Tenant) -> None:
    """`read` moves the read position and answers with the remaining unread count."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    sent = [await tenant.send(alice, cid, f"m{i}") for i in range(3)]
    async with (
        socket(server.ws_url, alice.token) as alice_ws,
        socket(server.ws_url, bob.token) as bob_ws,
    ):
        await bob_ws.send(
            {"type": "read", "id": "r1", "data": {"channel_id": cid, "message_id": sent[1]["id"]}}
        )
        assert await bob_ws.expect("ack") == {
            "type": "ack",
            "id": "r1",
            "data": {"channel_id": cid, "unread_count": 1},
        }
        seen = await alice_ws.expect("read.updated")
        assert seen["data"]["user_id"] == bob.id
        assert seen["data"]["last_read_message_id"] == sent[1]["id"]
        await bob_ws.send(
            {"type": "read", "id": "r2", "data": {"channel_id": cid, "message_id": sent[2]["id"]}}
        )
        assert (await bob_ws.expect("ack"))["data"] == {"channel_id": cid, "unread_count": 0}
    fetched = await tenant.http.get(f"/v1/channels/{cid}", headers=bob.headers)
    assert fetched.json()["unread_count"] == 0


BAD_COMMANDS = [
    pytest.param(
        json.dumps({"type": "subscribe", "id": "u1"}), 400, "bad-request", "u1", id="unknown-type"
    ),
    pytest.param(json.dumps({"id": "u2"}), 400, "bad-request", "u2", id="missing-type"),
    pytest.param("{not json", 400, "bad-request", None, id="malformed-json"),
    pytest.param("[1, 2]", 400, "bad-request", None, id="not-an-object"),
    pytest.param(
        json.dumps({"type": "typing", "id": "c1", "data": {"channel_id": "nope"}}),
        400,
        "bad-request",
        "c1",
        id="bad-channel-id",
    ),
    pytest.param(
        json.dumps({"type": "typing", "id": "c2", "data": {}}),
        400,
        "bad-request",
        "c2",
        id="missing-channel-id",
    ),
    pytest.param(
        json.dumps(
            {"type": "typing", "id": "c3", "data": {"channel_id": "ch_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}
        ),
        404,
        "not-found",
        "c3",
        id="unknown-channel",
    ),
    pytest.param(
        json.dumps(
            {"type": "read", "id": "c4", "data": {"channel_id": "ch_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}
        ),
        400,
        "bad-request",
        "c4",
        id="read-without-message-id",
    ),
    pytest.param(
        json.dumps({"type": "resume", "id": "c5", "data": {"after": "msg_1"}}),
        400,
        "bad-request",
        "c5",
        id="resume-bad-cursor",
    ),
    pytest.param(
        json.dumps({"type": "auth", "id": "c6", "data": {}}),
        400,
        "bad-request",
        "c6",
        id="reauth-without-token",
    ),
]


@pytest.mark.parametrize(("raw", "status", "type_", "command_id"), BAD_COMMANDS)
async def test_bad_commands_get_an_error_frame_and_the_socket_stays_open(
    server: ServerThread, tenant: Tenant, raw: str, status: int, type_: str, command_id: str | None
) -> None:
    """A bad command is answered with an `error` frame carrying problem fields; nothing closes."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.connection.send(raw)
        frame = await sock.next()
        assert_problem(frame, status, type_, command_id)
        assert await is_open(sock)


async def test_typing_state_must_be_start_or_stop(server: ServerThread, tenant: Tenant) -> None:
    """An unknown typing state is a bad request."""
    alice = await tenant.user("alice")
    cid = (await tenant.channel(alice, []))["id"]
    async with socket(server.ws_url, alice.token) as sock:
        await sock.send({"type": "typing", "id": "s", "data": {"channel_id": cid, "state": "idle"}})
        assert_problem(await sock.next(), 400, "bad-request", "s")
        assert await is_open(sock)


async def test_read_of_a_message_outside_the_channel_lists_the_field(
    server: ServerThread, tenant: Tenant
) -> None:
    """`read` naming a message of another channel is a validation error on body.message_id."""
    alice = await tenant.user("alice")
    cid = (await tenant.channel(alice, [], name="a"))["id"]
    elsewhere = (await tenant.channel(alice, [], name="b"))["id"]
    foreign = await tenant.send(alice, elsewhere, "not here")
    async with socket(server.ws_url, alice.token) as sock:
        await sock.send(
            {"type": "read", "id": "v", "data": {"channel_id": cid, "message_id": foreign["id"]}}
        )
        frame = await sock.expect("error")
        assert_problem(frame, 422, "validation-failed", "v")
        assert [e["field"] for e in frame["data"]["errors"]] == ["body.message_id"]
        assert await is_open(sock)


async def test_commands_on_foreign_channels_look_like_missing_ones(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Another app's channel, or one the user is not in, answers exactly like a missing id."""
    alice, carol = await tenant.user("alice"), await tenant.user("carol")
    not_mine = (await tenant.channel(alice, []))["id"]
    dave = await other_tenant.user("dave")
    other_app = (await other_tenant.channel(dave, []))["id"]
    missing = "ch_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    answers = {}
    async with socket(server.ws_url, carol.token) as sock:
        for name, channel_id in (
            ("missing", missing),
            ("not_mine", not_mine),
            ("other_app", other_app),
        ):
            for kind, extra in (("typing", {}), ("read", {"message_id": "msg_x"})):
                await sock.send(
                    {"type": kind, "id": "q", "data": {"channel_id": channel_id, **extra}}
                )
                answers[(name, kind)] = await sock.expect("error")
    for kind in ("typing", "read"):
        assert_problem(answers[("missing", kind)], 404, "not-found", "q")
        assert answers[("not_mine", kind)] == answers[("missing", kind)]
        assert answers[("other_app", kind)] == answers[("missing", kind)]


async def test_a_binary_frame_is_closed_1008(server: ServerThread, tenant: Tenant) -> None:
    """Only text frames are part of the protocol: a binary one is a policy violation."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.connection.send(json.dumps({"type": "ping", "id": "b"}).encode())
        code, _ = await closed_with(sock.connection)
    assert code == 1008


async def test_a_binary_auth_frame_is_closed_1008(server: ServerThread, tenant: Tenant) -> None:
    """A binary first frame is refused before any authentication happens."""
    bob = await tenant.user("bob")
    code, frames = await refused(
        server.ws_url, first=json.dumps({"type": "auth", "token": bob.token}).encode()
    )
    assert code == 1008
    assert not_ready(frames)


async def test_an_oversized_frame_is_closed_1009(server: ServerThread, tenant: Tenant) -> None:
    """A frame above realtime.max_frame_bytes closes the socket with 1009."""
    bob = await tenant.user("bob")
    limit = server.settings.realtime.max_frame_bytes
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "ping", "id": "x" * limit})
        code, _ = await closed_with(sock.connection)
    assert code == 1009


async def test_a_frame_just_under_the_limit_is_accepted(
    server: ServerThread, tenant: Tenant
) -> None:
    """The frame limit is not off by a lot: a frame near it is processed normally."""
    bob = await tenant.user("bob")
    limit = server.settings.realtime.max_frame_bytes
    async with socket(server.ws_url, bob.token) as sock:
        await sock.connection.send(json.dumps({"type": "nope", "pad": "x" * (limit - 100)}))
        assert_problem(await sock.next(), 400, "bad-request", None)
        assert await is_open(sock)


# --- resume ----------------------------------------------------------------------------------


async def test_resume_replays_only_the_missed_events_the_user_may_see(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """After a reconnect, resume replays missed events of the user's channels, then acks."""
    alice, bob, carol = [await tenant.user(n) for n in ("alice", "bob", "carol")]
    shared = (await tenant.channel(alice, [bob], name="shared"))["id"]
    private = (await tenant.channel(alice, [carol], name="private"))["id"]
    dave = await other_tenant.user("dave")
    dave_room = (await other_tenant.channel(dave, [], name="dave"))["id"]

    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, shared, "seen live")
        last_seen = (await bob_ws.expect("message.new"))["id"]

    missed_1 = await tenant.send(alice, shared, "missed 1")
    await tenant.send(alice, private, "not for bob")
    await other_tenant.send(dave, dave_room, "another app")
    renamed = await tenant.http.patch(
        f"/v1/channels/{shared}", json={"name": "renamed"}, headers=alice.headers
    )
    assert renamed.status_code == 200
    missed_2 = await tenant.send(alice, shared, "missed 2")

    async with socket(server.ws_url, bob.token) as bob_ws:
        await bob_ws.send({"type": "resume", "id": "res", "data": {"after": last_seen}})
        frames = [await bob_ws.next() for _ in range(4)]

    *replayed, ack = frames
    assert [(f["type"], f["data"].get("id")) for f in replayed] == [
        ("message.new", missed_1["id"]),
        ("channel.updated", shared),
        ("message.new", missed_2["id"]),
    ]
    assert all(f["channel_id"] == shared for f in replayed)
    assert [f["seq"] for f in replayed] == [1, 2, 3]
    assert ack == {"type": "ack", "id": "res", "data": {"replayed": 3}}


async def test_resume_with_nothing_missed_replays_nothing(
    server: ServerThread, tenant: Tenant
) -> None:
    """Resuming from the newest event (top-level `after` form) replays nothing."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "hi")
        newest = (await bob_ws.expect("message.new"))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        await bob_ws.send({"type": "resume", "id": "r", "after": newest})
        assert await bob_ws.next() == {"type": "ack", "id": "r", "data": {"replayed": 0}}


async def test_resume_from_before_the_server_started_requires_resync(
    server: ServerThread, tenant: Tenant
) -> None:
    """An event id older than the server cannot be resumed: `resync_required`."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as bob_ws:
        await bob_ws.send({"type": "resume", "id": "old", "data": {"after": BEFORE_START}})
        assert await bob_ws.next() == {"type": "resync_required", "id": "old", "data": {}}
        assert await is_open(bob_ws)


# --- re-authentication and token expiry ------------------------------------------------------


async def test_reauth_with_a_fresh_token_is_acked_with_its_expiry(
    server: ServerThread, tenant: Tenant
) -> None:
    """A fresh token for the same user is accepted on the open socket."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as sock:
        fresh = await tenant.user_token(bob.id)
        await sock.send({"type": "auth", "id": "re", "data": {"token": fresh}})
        ack = await sock.expect("ack")
        assert ack == {"type": "ack", "id": "re", "data": {"expires_at": claims_of(fresh)["exp"]}}
        assert await is_open(sock)


async def test_reauth_keeps_a_socket_open_past_the_old_tokens_expiry(
    server: ServerThread, tenant: Tenant
) -> None:
    """A socket whose token expires closes with 4001, unless it re-authenticated in time."""
    bob = await tenant.user("bob")
    keys = server.services.keys
    short_a = tokens.sign(keys, crafted(server, tenant, bob, ttl=2))
    short_b = tokens.sign(keys, crafted(server, tenant, bob, ttl=2))
    async with (
        socket(server.ws_url, short_a) as expiring,
        socket(server.ws_url, short_b) as renewed,
    ):
        await renewed.send({"type": "auth", "id": "re", "token": await tenant.user_token(bob.id)})
        assert (await renewed.expect("ack"))["id"] == "re"
        code, frames = await closed_with(expiring.connection, within=5)
        assert code == 4001
        assert not_ready(frames)
        await asyncio.sleep(max(0.0, claims_of(short_b)["exp"] - time.time() + 0.3))
        assert await is_open(renewed)


async def test_reauth_as_another_user_is_closed_4001(server: ServerThread, tenant: Tenant) -> None:
    """A socket cannot be switched to another user's identity."""
    bob, mallory = await tenant.user("bob"), await tenant.user("mallory")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "auth", "id": "swap", "data": {"token": mallory.token}})
        code, frames = await closed_with(sock.connection)
    assert code == 4001
    assert all(frame["type"] != "ack" for frame in frames)


async def test_reauth_with_another_apps_token_is_closed_4001(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A valid token of another app never joins an open socket."""
    bob, dave = await tenant.user("bob"), await other_tenant.user("dave")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "auth", "id": "x", "data": {"token": dave.token}})
        code, _ = await closed_with(sock.connection)
    assert code == 4001


@pytest.mark.parametrize("kind", ["garbage", "expired", "forged"])
async def test_reauth_with_an_invalid_token_is_closed_4001(
    server: ServerThread, tenant: Tenant, kind: str
) -> None:
    """A re-auth with a bad token ends the socket rather than keeping the old identity."""
    bob = await tenant.user("bob")
    token = _invalid_token(kind, server, tenant, bob)
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "auth", "id": "bad", "data": {"token": token}})
        code, _ = await closed_with(sock.connection)
    assert code == 4001


async def test_reauth_with_a_token_lacking_chat_read_is_closed_4003(
    server: ServerThread, tenant: Tenant
) -> None:
    """Re-auth cannot downgrade to a token that would not have opened the socket."""
    bob = await tenant.user("bob")
    write_only = await scoped_token(tenant, bob, "chat:write")
    async with socket(server.ws_url, bob.token) as sock:
        await sock.send({"type": "auth", "id": "down", "data": {"token": write_only}})
        code, frames = await closed_with(sock.connection)
    assert code == 4003
    assert all(frame["type"] != "ack" for frame in frames)


# --- deactivation, connection cap, idle heartbeat (more in test_websocket_closing.py) ----------


async def test_deactivation_closes_the_users_sockets_4001(
    server: ServerThread, tenant: Tenant
) -> None:
    """Deactivating a user closes all their open sockets; other users stay connected."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    await tenant.channel(alice, [bob])
    async with (
        socket(server.ws_url, bob.token) as phone,
        socket(server.ws_url, bob.token) as laptop,
        socket(server.ws_url, alice.token) as alice_ws,
    ):
        response = await tenant.http.post(
            f"/v1/users/{bob.id}/deactivation", headers=await tenant.backend_headers()
        )
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
        assert (await closed_with(phone.connection))[0] == 4001
        assert (await closed_with(laptop.connection))[0] == 4001
        assert await is_open(alice_ws)
    code, frames = await refused(server.ws_url, token=bob.token)
    assert code == 4001
    assert not_ready(frames)


async def test_too_many_sockets_for_one_user_is_closed_4009(
    strict_server: ServerThread, strict_tenant: Tenant
) -> None:
    """Beyond realtime.max_connections_per_user, a user's new socket is closed with 4009."""
    url = strict_server.ws_url
    bob, alice = await strict_tenant.user("bob"), await strict_tenant.user("alice")
    async with socket(url, bob.token), socket(url, bob.token) as second:
        assert STRICT_MAX_SOCKETS == 2
        code, frames = await refused(url, token=bob.token)
        assert code == 4009
        assert not_ready(frames)
        async with socket(url, alice.token) as alice_ws:  # the cap is per user
            assert await is_open(alice_ws)
        await second.connection.close()
        async with socket(url, bob.token) as again:  # a closed socket frees its slot
            assert again.ready["data"]["user_id"] == bob.id


async def test_events_after_an_idle_heartbeat_are_still_delivered(
    server: ServerThread, tenant: Tenant
) -> None:
    """A connection that sat idle through a heartbeat ping receives the next event at once."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    heartbeat = server.settings.realtime.heartbeat_seconds
    async with socket(server.ws_url, bob.token) as bob_ws:
        ping = json.loads(await asyncio.wait_for(bob_ws.connection.recv(), heartbeat + 1))
        assert ping == {"type": "ping"}
        await bob_ws.send({"type": "pong"})
        sent = [await tenant.send(alice, cid, f"after idle {i}") for i in range(2)]
        received = [await bob_ws.next(wait=heartbeat / 2) for _ in sent]
    assert [frame["data"]["id"] for frame in received] == [message["id"] for message in sent]
    assert_consecutive(received)


async def test_resume_skips_typing_indicators(server: ServerThread, tenant: Tenant) -> None:
    """A typing indicator missed while offline is stale: resume replays the message only."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "seen live")
        last_seen = (await bob_ws.expect("message.new"))["id"]
    await alice_typing(server, alice, cid)
    missed = await tenant.send(alice, cid, "missed")
    async with socket(server.ws_url, bob.token) as bob_ws:
        await bob_ws.send({"type": "resume", "id": "r", "data": {"after": last_seen}})
        replayed, ack = await bob_ws.next(), await bob_ws.next()
    assert (replayed["type"], replayed["data"]["id"]) == ("message.new", missed["id"])
    assert ack == {"type": "ack", "id": "r", "data": {"replayed": 1}}


async def test_typing_in_an_archived_channel_is_refused(
    server: ServerThread, tenant: Tenant
) -> None:
    """Nobody can send in an archived channel, so typing there is a 409 error frame."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    await archive(tenant, alice, cid)
    async with socket(server.ws_url, bob.token) as bob_ws, socket(server.ws_url, alice.token) as ws:
        await ws.send({"type": "typing", "id": "t", "data": {"channel_id": cid}})
        assert_problem(await ws.expect("error"), 409, "conflict", "t")
        assert await bob_ws.silent(0.3) == []


async def test_the_handshake_carries_the_request_id(server: ServerThread, tenant: Tenant) -> None:
    """The 101 answer names the request like every HTTP answer: the client's well-formed
    X-Request-Id echoed, or a new one."""
    bob = await tenant.user("bob")
    async with socket(server.ws_url, bob.token, headers={"X-Request-Id": "trace-0001"}) as sock:
        assert sock.connection.response is not None
        assert sock.connection.response.headers["X-Request-Id"] == "trace-0001"
    async with socket(server.ws_url, bob.token) as sock:
        assert sock.connection.response is not None
        assert sock.connection.response.headers["X-Request-Id"].startswith("req_")
