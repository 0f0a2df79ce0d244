"""RFC 6750 bearer token usage: header parsing, challenges, and the query-string ban."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bastion.core.errors import InvalidRequest, Unauthenticated
from bastion.core.ids import Kind, new_id
from bastion.security.oauth import rfc6750
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

CHALLENGE = 'Bearer realm="bastion"'
INVALID_TOKEN = 'Bearer realm="bastion", error="invalid_token"'
INVALID_REQUEST = 'Bearer realm="bastion", error="invalid_request"'
PLACEHOLDERS: dict[str, Callable[[], str]] = {
    "user_id": lambda: new_id(Kind.USER),
    "channel_id": lambda: new_id(Kind.CHANNEL),
    "message_id": lambda: new_id(Kind.MESSAGE),
    "client_id": lambda: new_id(Kind.CLIENT),
    "reaction": lambda: "thumbsup",
    "role": lambda: "member",
    "policy": lambda: "reads",
}


def protected_operations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, concrete path, required scope) of every operation with a bearer requirement."""
    found = []
    for template, operations in document["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)](), template)
        for method, operation in operations.items():
            for requirement in operation.get("security", []):
                for scope in requirement.get("HTTPBearer", []):
                    found.append((method.upper(), path, scope))
    return found


def test_bearer_token_extracts_the_b64token() -> None:
    """§2.1: the credentials are ``Bearer`` and a b64token."""
    assert rfc6750.bearer_token("Bearer abc.DEF-_~+/123==") == "abc.DEF-_~+/123=="


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_credentials_is_a_challenge_without_error(value: str | None) -> None:
    """§3.1: with no credentials the 401 carries no error code."""
    with pytest.raises(Unauthenticated) as caught:
        rfc6750.bearer_token(value)
    assert caught.value.token_present is False


@pytest.mark.parametrize(
    "value", ["Basic dXNlcjpwYXNz", "Digest username=x", "DPoP abc.def.ghi", "Token abc", "abc.def"]
)
def test_another_scheme_is_a_challenge_without_error(value: str) -> None:
    """§3.1: a request using an unsupported authentication method gets no error code."""
    with pytest.raises(Unauthenticated) as caught:
        rfc6750.bearer_token(value)
    assert caught.value.token_present is False


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer a b", "Bearer a,b", "Bearer a=b", "Bearer ä", "Bearer a\tb"]
)
def test_a_malformed_bearer_value_is_an_invalid_token(value: str) -> None:
    """A Bearer header whose value is not a b64token is an invalid token."""
    with pytest.raises(Unauthenticated) as caught:
        rfc6750.bearer_token(value)
    assert caught.value.token_present is True


def test_query_token_is_refused() -> None:
    """§2.3 is not supported: ``access_token`` in the URL is a request error."""
    with pytest.raises(InvalidRequest):
        rfc6750.refuse_query_token({"limit", "access_token"})
    rfc6750.refuse_query_token({"limit", "after"})


def test_one_authorization_header_is_read_and_two_are_refused() -> None:
    """§2: one Authorization header is the credential; two are two methods at once."""
    assert rfc6750.authorization_header([]) is None
    assert rfc6750.authorization_header(["Bearer a"]) == "Bearer a"
    with pytest.raises(rfc6750.InvalidBearerRequest):
        rfc6750.authorization_header(["Bearer a", "Bearer b"])


def test_challenge_format() -> None:
    """§3: auth-params are quoted and comma separated, realm first."""
    assert rfc6750.challenge("bastion") == CHALLENGE
    assert rfc6750.challenge("bastion", "insufficient_scope", scope="chat:write") == (
        'Bearer realm="bastion", error="insufficient_scope", scope="chat:write"'
    )


async def test_every_protected_route_challenges_without_a_token(http: httpx.AsyncClient) -> None:
    """Each operation the OpenAPI document marks as bearer-protected answers 401 + challenge."""
    document = (await http.get("/openapi.json")).json()
    operations = protected_operations(document)
    assert len(operations) >= 20
    for method, path, _scope in operations:
        response = await http.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == CHALLENGE, (method, path)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 401


async def test_every_protected_route_refuses_a_bad_token(http: httpx.AsyncClient) -> None:
    """Each protected operation answers 401 ``invalid_token`` to a token that does not verify."""
    document = (await http.get("/openapi.json")).json()
    headers = {"Authorization": "Bearer not.a.token"}
    for method, path, _scope in protected_operations(document):
        response = await http.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == INVALID_TOKEN, (method, path)


async def test_insufficient_scope_is_403_with_the_needed_scope(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """§3.1: a valid token lacking the scope gets 403 ``insufficient_scope`` naming it."""
    alice = await tenant.user("alice")
    response = await http.post(
        "/v1/users", json={"external_id": "eve", "display_name": "Eve"}, headers=alice.headers
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 403
    assert body["type"].endswith("insufficient-scope")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="bastion", error="insufficient_scope", scope="users:write"'
    )


async def test_backend_token_lacks_chat_scopes(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An app-backend token cannot read chat: 403 ``insufficient_scope`` for ``chat:read``."""
    response = await http.get("/v1/channels", headers=await tenant.backend_headers())
    assert response.status_code == 403
    assert 'scope="chat:read"' in response.headers["www-authenticate"]


async def test_form_body_token_is_not_a_method(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """§2.2 (form-encoded body parameter) is not supported: the JSON API answers 415."""
    token = await tenant.backend_token()
    response = await http.post(
        "/v1/users", data={"access_token": token, "external_id": "x", "display_name": "x"}
    )
    assert response.status_code == 415
    assert response.json()["status"] == 415


async def test_valid_token_in_query_is_400_even_with_a_header(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """§2.3 and "more than one method": a query token is refused even beside a good header."""
    alice = await tenant.user("alice")
    for headers in ({}, alice.headers):
        response = await http.get(
            "/v1/channels", params={"access_token": alice.token}, headers=headers
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 400
        assert alice.token not in response.text


def bearer(token: str) -> tuple[str, str]:
    """One ``Authorization: Bearer`` header field, to send beside another."""
    return ("Authorization", f"Bearer {token}")


async def test_two_authorization_headers_are_400_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """§2, §3.1: alice's and bob's tokens together are refused, in either order, with
    ``invalid_request``; neither user is served."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    pairs = [
        [bearer(alice.token), bearer(bob.token)],
        [bearer(bob.token), bearer(alice.token)],
        [bearer(alice.token), bearer(alice.token)],
        [bearer(alice.token), ("Authorization", f"DPoP {bob.token}")],
        [bearer(alice.token), ("Authorization", "Basic dXNlcjpwYXNz")],
    ]
    for headers in pairs:
        response = await http.get("/v1/users/me", headers=headers)
        assert response.status_code == 400, (headers[1][1][:6], response.text)
        assert response.headers["www-authenticate"] == INVALID_REQUEST
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 400
        assert alice.token not in response.text
        assert bob.token not in response.text
    assert (await http.get("/v1/users/me", headers=[bearer(alice.token)])).status_code == 200


async def test_a_query_token_names_invalid_request_in_the_challenge(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """§3.1: the query-string refusal carries the ``invalid_request`` error code."""
    alice = await tenant.user("alice")
    response = await http.get("/v1/channels", params={"access_token": alice.token})
    assert response.status_code == 400
    assert response.headers["www-authenticate"] == INVALID_REQUEST


async def test_two_authorization_headers_close_the_websocket_4001(
    server: ServerThread, tenant: Tenant
) -> None:
    """The WebSocket handshake refuses two Authorization headers as well: no ``ready``."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    headers = [bearer(alice.token), bearer(bob.token)]
    async with connect(server.ws_url, additional_headers=headers, open_timeout=5) as connection:
        code, frames = await until_closed(connection)
    assert code == 4001
    assert all('"ready"' not in frame for frame in frames)


async def until_closed(connection: ClientConnection) -> tuple[int | None, list[str]]:
    """Read until the server closes (5 s at most): its close code and the frames before."""
    frames: list[str] = []
    async with asyncio.timeout(5):
        while True:
            try:
                frames.append(str(await connection.recv()))
            except ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else None), frames
