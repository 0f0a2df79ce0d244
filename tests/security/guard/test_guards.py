"""The ASGI guards: body size and media type, 404/405 problems, security headers, request ids."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bastion.core.ids import Kind, is_id
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """An RFC 9457 problem whose ``status`` is the HTTP status; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert "Traceback" not in response.text
    return body


async def raw_request(server: ServerThread, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send only a request head (no body) and read the response until the server closes.

    An early answer followed by a close while the client is still uploading can be lost to
    a TCP reset, so the body is never sent: that also proves the server did not wait for it.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def test_declared_oversized_body_is_413_before_it_is_read(
    server: ServerThread, tenant: Tenant
) -> None:
    """A Content-Length above server.max_body_bytes gets 413 at once, the body never sent."""
    limit = server.settings.server.max_body_bytes
    token = await tenant.backend_token()
    status, headers, body = await raw_request(
        server,
        "POST /v1/users HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        f"Authorization: Bearer {token}\nContent-Length: {limit + 1}\n",
    )
    assert status == 413
    assert headers["content-type"].startswith(PROBLEM)
    problem = json.loads(body)
    assert problem["status"] == 413
    assert str(limit) in problem["detail"]
    assert problem["instance"] == headers["x-request-id"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert "server" not in headers


async def test_413_comes_before_authentication(server: ServerThread) -> None:
    """Even an anonymous request cannot make the server read an oversized body."""
    status, headers, body = await raw_request(
        server,
        "POST /v1/channels HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        "Content-Length: 10000000000\n",
    )
    assert status == 413
    assert json.loads(body)["status"] == 413
    assert is_id(Kind.REQUEST, headers["x-request-id"])


async def test_a_body_at_the_limit_passes_the_size_guard(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Exactly max_body_bytes is allowed through (here it then fails as invalid JSON)."""
    limit = server.settings.server.max_body_bytes
    response = await http.post(
        "/v1/users",
        content=b" " * (limit - 1) + b"{",
        headers={"Content-Type": "application/json", **await tenant.backend_headers()},
    )
    assert_problem(response, 400)


async def test_chunked_oversized_body_is_413(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A chunked body (no Content-Length) that grows past the limit is cut off with 413."""
    limit = server.settings.server.max_body_bytes

    async def stream() -> AsyncIterator[bytes]:
        sent = 0
        while sent < limit:
            chunk = b" " * min(65_536, limit - sent)
            sent += len(chunk)
            yield chunk
        yield b" "  # one byte over the limit
        # Hold back the final empty chunk until the server has answered and closed, so
        # no unread bytes make its close a TCP reset that would swallow the 413.
        await asyncio.sleep(0.2)

    response = await http.post(
        "/v1/users",
        content=stream(),
        headers={"Content-Type": "application/json", **await tenant.backend_headers()},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)


async def test_a_small_chunked_body_is_accepted(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Chunked transfer itself is fine: a small chunked JSON body creates the user."""

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"external_id": "chunky",'
        yield b' "display_name": "Chunky"}'

    response = await http.post(
        "/v1/users",
        content=stream(),
        headers={"Content-Type": "application/json", **await tenant.backend_headers()},
    )
    assert response.status_code == 201, response.text
    assert response.json()["external_id"] == "chunky"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonp",
    ],
)
async def test_a_non_json_body_on_a_json_route_is_415(
    http: httpx.AsyncClient, tenant: Tenant, content_type: str
) -> None:
    """Only application/json bodies reach the JSON API."""
    response = await http.post(
        "/v1/users",
        content=b'{"external_id": "x", "display_name": "x"}',
        headers={"Content-Type": content_type, **await tenant.backend_headers()},
    )
    assert_problem(response, 415)


async def test_a_body_without_content_type_is_415(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A body with no declared media type is refused, not sniffed."""
    response = await http.post(
        "/v1/users",
        content=b'{"external_id": "x", "display_name": "x"}',
        headers=await tenant.backend_headers(),
    )
    assert_problem(response, 415)


async def test_json_with_charset_is_accepted(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """``application/json; charset=utf-8`` is JSON."""
    response = await http.post(
        "/v1/users",
        content=b'{"external_id": "cs", "display_name": "Cs"}',
        headers={
            "Content-Type": "Application/JSON; charset=utf-8",
            **await tenant.backend_headers(),
        },
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v2/users", "/v1/users/me/secrets", "/.env"])
async def test_an_unknown_path_is_a_404_problem(http: httpx.AsyncClient, path: str) -> None:
    """Unknown paths answer an RFC 9457 404, with the request id as ``instance``."""
    response = await http.get(path)
    body = assert_problem(response, 404)
    assert body["instance"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/users", {"GET", "HEAD", "POST"}),
        ("PUT", "/v1/channels", {"GET", "HEAD", "POST"}),
        ("TRACE", "/v1/channels", {"GET", "HEAD", "POST"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
    ],
)
async def test_a_wrong_method_is_a_405_problem_with_allow(
    http: httpx.AsyncClient, method: str, path: str, allow: set[str]
) -> None:
    """A path that exists answers other methods with 405 and an ``Allow`` header (the OAuth
    endpoints answer it in their own shape: tests/security/oauth/test_token_endpoint.py)."""
    response = await http.request(method, path)
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow


async def test_security_headers_on_success(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An authenticated 200 carries nosniff, no-store, a closed CSP and no Server header."""
    response = await http.get("/v1/users", headers=await tenant.backend_headers())
    assert response.status_code == 200
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "server" not in headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/v1/channels"),
        ("DELETE", "/v1/users"),
        ("GET", "/healthz"),
        ("POST", "/oauth/token"),
    ],
)
async def test_security_headers_on_every_response(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    """Errors and public routes carry the same security headers."""
    response = await http.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


@pytest.mark.parametrize(
    "path", ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server"]
)
async def test_public_discovery_documents_may_be_cached(http: httpx.AsyncClient, path: str) -> None:
    """Documented exception: public discovery documents are cacheable; they keep nosniff."""
    response = await http.get(path)
    assert response.headers["cache-control"].startswith("public")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers


@pytest.mark.parametrize(
    "request_id", ["abcdefgh", "req-2026-11-28T03:04:05.678Z", "a" * 64, "trace.id_1:2-3"]
)
async def test_a_well_formed_request_id_is_echoed(http: httpx.AsyncClient, request_id: str) -> None:
    """A well-formed X-Request-Id comes back unchanged and is the problem ``instance``."""
    response = await http.get("/nope", headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id
    assert assert_problem(response, 404)["instance"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        "short",
        "a" * 65,
        "has space in it",
        "semi;colon;id",
        "<script>alert(1)</script>",
        'quote"quote"',
        "ümlaut-request",
    ],
)
async def test_a_malformed_request_id_is_replaced(http: httpx.AsyncClient, request_id: str) -> None:
    """A malformed X-Request-Id is replaced by a fresh ``req_`` id, used as ``instance``."""
    response = await http.get("/nope", headers=[(b"X-Request-Id", request_id.encode())])
    echoed = response.headers["x-request-id"]
    assert echoed != request_id
    assert is_id(Kind.REQUEST, echoed)
    body = assert_problem(response, 404)
    assert body["instance"] == echoed
    assert request_id not in response.text


async def test_every_response_gets_a_fresh_request_id(http: httpx.AsyncClient) -> None:
    """Without an incoming id each response has its own generated one."""
    ids = {(await http.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(re.fullmatch(r"req_[0-9A-HJKMNP-TV-Z]{26}", value) for value in ids)
