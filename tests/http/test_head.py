"""HEAD wherever GET is answered (RFC 9110 §9.3.2): the GET's status and headers, no body."""

from __future__ import annotations

import httpx
import pytest

from bastion.core.asgi import Message, Receive, Scope, Send
from bastion.http.head import HeadAsGet
from tests.support.messaging import assert_problem
from tests.support.tenants import Tenant

# Headers that differ between any two answers, whatever the method.
_PER_RESPONSE = {"date", "x-request-id", "ratelimit"}


def _same_headers(get: httpx.Response, head: httpx.Response) -> None:
    def kept(response: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k not in _PER_RESPONSE}

    assert kept(head) == kept(get)


async def test_head_on_health_is_the_get_without_its_body(http: httpx.AsyncClient) -> None:
    """200, the same headers (Content-Length included) and no content."""
    get, head = await http.get("/healthz"), await http.head("/healthz")
    assert (get.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content) > 0
    _same_headers(get, head)


async def test_head_on_an_authenticated_route(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """With a token: the GET's status and headers. Without one: the same 401 challenge."""
    headers = await tenant.backend_headers()
    await tenant.user("listed")
    get = await http.get("/v1/users", headers=headers)
    head = await http.head("/v1/users", headers=headers)
    assert (get.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    _same_headers(get, head)
    refused = await http.head("/v1/users")
    assert refused.status_code == 401
    assert refused.content == b""
    assert (
        refused.headers["www-authenticate"]
        == (await http.get("/v1/users")).headers["www-authenticate"]
    )


async def test_head_where_there_is_no_get_is_405(http: httpx.AsyncClient) -> None:
    """A POST-only path refuses HEAD like GET, naming what it allows."""
    response = await http.head("/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(("path", "allow"), [("/healthz", "GET, HEAD"), ("/v1/users", None)])
async def test_allow_lists_head_beside_get(
    http: httpx.AsyncClient, path: str, allow: str | None
) -> None:
    """A 405 on a GET resource names HEAD among the allowed methods."""
    response = await http.request("PATCH", path)
    assert_problem(response, 405, "method-not-allowed")
    assert allow is None or response.headers["allow"] == allow
    assert "HEAD" in {m.strip() for m in response.headers["allow"].split(",")}


async def test_the_wrapper_restores_the_method_and_drops_every_body_chunk() -> None:
    """The app runs a GET; the server around it sees HEAD again and no content."""
    seen: list[str] = []
    sent: list[Message] = []

    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        seen.append(scope["method"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(scope["method"])
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "HEAD"}
    await HeadAsGet(app)(scope, receive, send)
    assert seen == ["GET", "HEAD"]
    assert scope["method"] == "HEAD"
    assert [m.get("body") for m in sent[1:]] == [b"", b""]
    assert sent[1]["more_body"] is True
