"""Sealed columns resist tampering: moved, flipped or re-keyed ciphertexts never open,
and the raw database holds none of the plaintext (message bodies, names, TOTP secrets)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from bastion.observe.events import MemorySink
from tests.support.oauth import (
    Browser,
    RegisteredClient,
    authorize_params,
    pkce_pair,
    register_client,
    user_with_password,
)
from tests.support.raw import raw_bytes, sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User

SECRETS = ["the launch code is 0451", "meet me at the old mill", "alice@example.com"]


async def _setup(tenant: Tenant) -> tuple[User, User, dict[str, object], list[dict[str, object]]]:
    alice = await tenant.user("alice", display_name="Alice Liddell <alice@example.com>")
    bob = await tenant.user("bob", display_name="Bob <bob@example.org>")
    channel = await tenant.channel(alice, [bob], name="plans")
    sent = [await tenant.send(alice, str(channel["id"]), text) for text in SECRETS]
    return alice, bob, channel, sent


def _body(server: ServerThread, message_id: object) -> str:
    rows = sql(server, "SELECT body FROM messages WHERE id = :id", id=message_id)
    return str(rows[0][0])


async def _read(http: httpx.AsyncClient, user: User, message_id: object) -> httpx.Response:
    return await http.get(f"/v1/messages/{message_id}", headers=user.headers)


async def test_bodies_and_names_are_sealed_at_rest(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Stored values are e1.<key>.<ciphertext>; the API still shows the plaintext."""
    alice, _bob, _channel, sent = await _setup(tenant)
    stored = _body(server, sent[0]["id"])
    assert stored.startswith("e1.dek_")
    assert SECRETS[0] not in stored
    name = sql(server, "SELECT display_name FROM users WHERE id = :id", id=alice.id)[0][0]
    assert name.startswith("e1.dek_")
    assert "alice@example.com" not in name
    shown = await _read(http, alice, sent[0]["id"])
    assert shown.json()["text"] == SECRETS[0]
    me = await http.get("/v1/users/me", headers=alice.headers)
    assert me.json()["display_name"] == "Alice Liddell <alice@example.com>"


async def test_row_swap_fails(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A body copied onto another message of the same channel (same key) does not open."""
    alice, _bob, _channel, sent = await _setup(tenant)
    sql(
        server,
        "UPDATE messages SET body = :body WHERE id = :id",
        body=_body(server, sent[0]["id"]),
        id=sent[1]["id"],
    )
    response = await _read(http, alice, sent[1]["id"])
    assert response.status_code == 500
    assert SECRETS[0] not in response.text


async def test_column_swap_fails(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A message body copied into a user's display name does not open."""
    alice, _bob, _channel, sent = await _setup(tenant)
    sql(
        server,
        "UPDATE users SET display_name = :value WHERE id = :id",
        value=_body(server, sent[0]["id"]),
        id=alice.id,
    )
    response = await http.get("/v1/users/me", headers=alice.headers)
    assert response.status_code == 500
    assert SECRETS[0] not in response.text


async def test_app_swap_fails(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A body from another app, key reference and all, does not open here."""
    _alice, _bob, _channel, sent = await _setup(tenant)
    carol = await other_tenant.user("carol")
    theirs = await other_tenant.channel(carol, [], name="theirs")
    target = await other_tenant.send(carol, str(theirs["id"]), "harmless")
    sql(
        server,
        "UPDATE messages SET body = :body WHERE id = :id",
        body=_body(server, sent[0]["id"]),
        id=target["id"],
    )
    response = await _read(http, carol, target["id"])
    assert response.status_code == 500
    assert SECRETS[0] not in response.text


@pytest.mark.parametrize("position", [12, 40, -3])
async def test_bit_flip_fails(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant, position: int
) -> None:
    """Changing one character of the ciphertext (nonce, body or tag) is detected."""
    alice, _bob, _channel, sent = await _setup(tenant)
    stored = _body(server, sent[2]["id"])
    prefix, _, blob = stored.rpartition(".")
    index = position % len(blob)
    flipped = blob[:index] + ("A" if blob[index] != "A" else "B") + blob[index + 1 :]
    sql(
        server,
        "UPDATE messages SET body = :body WHERE id = :id",
        body=f"{prefix}.{flipped}",
        id=sent[2]["id"],
    )
    response = await _read(http, alice, sent[2]["id"])
    assert response.status_code == 500
    assert SECRETS[2] not in response.text


async def test_wrong_data_key_fails(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A wrapped data key moved to another key's row does not unwrap (its AAD names it)."""
    alice, bob, _channel, sent = await _setup(tenant)
    keys = sql(
        server,
        "SELECT id, wrapped FROM data_keys WHERE app_id = :app AND owner_kind = 'user' "
        "AND owner_id IN (:a, :b) ORDER BY owner_id",
        app=tenant.app_id,
        a=alice.id,
        b=bob.id,
    )
    assert len(keys) == 2
    (_first_id, first), (second_id, _second) = keys
    sql(server, "UPDATE data_keys SET wrapped = :w WHERE id = :id", w=first, id=second_id)
    # Keys are ordered by owner id: the second belongs to the user with the larger id.
    victim, other = (alice, bob) if alice.id > bob.id else (bob, alice)
    response = await http.get("/v1/users/me", headers=victim.headers)
    assert response.status_code == 500
    assert (await http.get("/v1/users/me", headers=other.headers)).status_code == 200
    assert (await _read(http, alice, sent[0]["id"])).json()["text"] == SECRETS[0]


async def test_raw_database_holds_no_plaintext(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant, tmp_path: Path
) -> None:
    """The database files (SQLite with its WAL) or a full dump (PostgreSQL) contain none
    of the messages, names or e-mail addresses written through the API."""
    alice, _bob, channel, sent = await _setup(tenant)
    edited = await http.patch(
        f"/v1/messages/{sent[1]['id']}",
        json={"text": "edited: the vault opens at dawn"},
        headers=alice.headers,
    )
    assert edited.status_code == 200
    data = raw_bytes(server.settings.database_url, tmp_path)
    assert data
    for secret in [*SECRETS, "the vault opens at dawn", "Alice Liddell", "bob@example.org"]:
        assert secret.encode() not in data, secret
    assert channel["id"]


async def _enrol(server: ServerThread, client: RegisteredClient, username: str) -> pyotp.TOTP:
    """Log in to a require_mfa client and enrol TOTP; the authenticator the user scanned."""
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    try:
        enrol = await browser.follow(
            await browser.login(username, **authorize_params(client, challenge))
        )
        found = re.search(r'<code id="secret">([A-Z2-7]+)</code>', enrol.text)
        assert found is not None
        totp = pyotp.TOTP(found.group(1))
        shown = await browser.submit("/oauth/login/enrol", enrol, code=totp.now())
        assert "<li><code>" in shown.text, shown.text
    finally:
        await browser.close()
    return totp


async def _second_factor(
    server: ServerThread, client: RegisteredClient, username: str, code: str
) -> httpx.Response:
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    try:
        page = await browser.follow(
            await browser.login(username, **authorize_params(client, challenge))
        )
        assert 'action="/oauth/login/mfa"' in page.text
        return await browser.submit("/oauth/login/mfa", page, code=code)
    finally:
        await browser.close()


def _stored_totp(server: ServerThread, user_id: str) -> str:
    rows = sql(server, "SELECT totp_secret FROM login_credentials WHERE user_id = :id", id=user_id)
    return str(rows[0][0])


async def test_totp_secrets_are_sealed_at_rest(
    server: ServerThread, tenant: Tenant, tmp_path: Path
) -> None:
    """After enrolment the database holds the secret only sealed; codes still work."""
    client = await register_client(tenant, require_mfa=True)
    user_id = await user_with_password(tenant, "tom")
    totp = await _enrol(server, client, "tom")
    stored = _stored_totp(server, user_id)
    assert stored.startswith("e1.dek_")
    assert totp.secret not in stored
    data = raw_bytes(server.settings.database_url, tmp_path)
    assert totp.secret.encode() not in data
    answer = await _second_factor(server, client, "tom", totp.at(time.time() + 30))
    assert answer.headers["location"].startswith(client.redirect_uri + "?code="), answer.text


async def test_a_totp_secret_swapped_from_another_row_does_not_open(
    server: ServerThread, tenant: Tenant
) -> None:
    """Uma's sealed secret copied into Val's row: Val's login accepts neither her own nor
    Uma's codes, and the unreadable secret is recorded."""
    events = MemorySink()
    server.services.events.add_sink(events)
    client = await register_client(tenant, require_mfa=True)
    uma_id = await user_with_password(tenant, "uma-t")
    val_id = await user_with_password(tenant, "val-t")
    uma = await _enrol(server, client, "uma-t")
    val = await _enrol(server, client, "val-t")
    sql(
        server,
        "UPDATE login_credentials SET totp_secret = :value WHERE user_id = :id",
        value=_stored_totp(server, uma_id),
        id=val_id,
    )
    for code in (uma.at(time.time() + 30), val.at(time.time() + 30)):
        refused = await _second_factor(server, client, "val-t", code)
        assert refused.status_code == 200
        assert "not valid" in refused.text
    unreadable = [
        e
        for e in events.of("mfa.verify")
        if e.actor.subject == val_id and e.reason == "secret_unreadable"
    ]
    assert unreadable
