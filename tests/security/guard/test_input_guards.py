"""The input guards through the real server: target, headers, media type, text, JSON shape."""

from __future__ import annotations

import httpx
import pytest

from tests.security.guard.test_guards import assert_problem, raw_request
from tests.security.oauth.test_token_endpoint import assert_oauth_error
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_an_overlong_url_is_414(server: ServerThread, http: httpx.AsyncClient) -> None:
    """A request target above validation.max_url_bytes is 414, before routing."""
    limit = server.settings.validation.max_url_bytes
    response = await http.get("/v1/users", params={"external_id": "x" * limit})
    body = assert_problem(response, 414)
    assert str(limit) in str(body["detail"])
    assert "xxxx" not in response.text


async def test_a_url_at_the_limit_is_routed(server: ServerThread, http: httpx.AsyncClient) -> None:
    """Just under the limit the request reaches the API (and needs a token)."""
    limit = server.settings.validation.max_url_bytes
    response = await http.get("/v1/users", params={"external_id": "x" * (limit - 40)})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "query",
    ["limit=1&limit=2", "limit=1&limit=", "after=&after=", "a=1&b=2&a=3", "limit=1&%6Cimit=2"],
)
async def test_a_repeated_query_parameter_is_400(
    http: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    """Parameter pollution is refused, even when one of the values is empty."""
    headers = await tenant.backend_headers()
    response = await http.get(f"/v1/users?{query}", headers=headers)
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/users?external_id=%FF",
        "/v1/users?external_id=%00",
        "/v1/users?external_id=a%0D%0ASet-Cookie:x=1",
        "/v1/users/%C0%AF",
        "/v1/users/usr_%00",
        "/v1/users?%FF=1",
    ],
)
async def test_bad_encoding_in_the_target_is_400(
    http: httpx.AsyncClient, tenant: Tenant, target: str
) -> None:
    """Invalid UTF-8 (overlong forms too), NUL and CR/LF in path or query are refused."""
    headers = await tenant.backend_headers()
    response = await http.get(target, headers=headers)
    assert_problem(response, 400)


async def test_too_many_headers_is_431(server: ServerThread, http: httpx.AsyncClient) -> None:
    """More header fields than validation.max_headers is 431."""
    count = server.settings.validation.max_headers
    headers = {f"x-filler-{i}": "1" for i in range(count + 1)}
    response = await http.get("/v1/users", headers=headers)
    assert_problem(response, 431)


async def test_too_many_header_bytes_is_431(server: ServerThread, http: httpx.AsyncClient) -> None:
    """Header bytes above validation.max_header_bytes (but under the server's own cap) is 431."""
    size = server.settings.validation.max_header_bytes
    headers = {f"x-filler-{i}": "v" * (size // 20) for i in range(10)}
    assert sum(len(v) for v in headers.values()) < size
    headers["x-more"] = "v" * (size // 2)
    status, _headers, _body = await raw_request(
        server,
        "GET /v1/users HTTP/1.1\nHost: 127.0.0.1\n"
        + "".join(f"{k}: {v}\n" for k, v in headers.items()),
    )
    assert status in (431, 400)  # 400 when the HTTP server's own header cap hits first


async def test_a_charset_other_than_utf8_is_415(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """JSON must be UTF-8: a declared latin-1 charset is refused."""
    headers = {
        **await tenant.backend_headers(),
        "Content-Type": "application/json; charset=latin-1",
    }
    response = await http.post("/v1/users", content=b"{}", headers=headers)
    assert_problem(response, 415)


async def test_json_on_the_form_route_is_415(http: httpx.AsyncClient) -> None:
    """The token endpoint accepts only form data; it refuses in RFC 6749 §5.2 shape."""
    response = await http.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert_oauth_error(response, 415, "invalid_request")


MERGE_PATCH = "application/merge-patch+json"


async def test_a_merge_patch_media_type_is_accepted_on_patch(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A PATCH may declare its body a JSON Merge Patch (RFC 7396 §4); it applies as JSON."""
    headers = await tenant.backend_headers()
    created = await http.post(
        "/v1/users", json={"external_id": "mp", "display_name": "before"}, headers=headers
    )
    url = f"/v1/users/{created.json()['id']}"
    for media_type in (MERGE_PATCH, f"{MERGE_PATCH}; charset=utf-8"):
        patched = await http.patch(
            url,
            content=b'{"display_name": "after"}',
            headers={**headers, "Content-Type": media_type},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["display_name"] == "after"


async def test_a_merge_patch_media_type_is_415_where_nothing_is_patched(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A POST is not a merge patch, and the form-only token endpoint takes no JSON at all."""
    headers = {**await tenant.backend_headers(), "Content-Type": MERGE_PATCH}
    body = b'{"external_id": "a", "display_name": "b"}'
    assert_problem(await http.post("/v1/users", content=body, headers=headers), 415)
    # The OAuth endpoints answer their refusals in the RFC 6749 §5.2 shape.
    token = await http.patch("/oauth/token", content=b"{}", headers=headers)
    assert_oauth_error(token, 415, "invalid_request")
    assert (await http.get("/v1/users", headers=headers)).json()["data"] == []


async def test_json_shape_limits_hold_for_merge_patches(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A merge-patch body is JSON too: measured before parsing like any other."""
    headers = {**await tenant.backend_headers(), "Content-Type": MERGE_PATCH}
    body = b'{"a":' * 40 + b"1" + b"}" * 40
    response = await http.patch(f"/v1/users/{'usr_' + '0' * 26}", content=body, headers=headers)
    problem = assert_problem(response, 400)
    assert "deeper" in str(problem["detail"])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"external_id": "a", "display_name": "b\x00c"}', "NUL byte"),
        (b'{"external_id": "a", "display_name": "b\\u0000c"}', "NUL character"),
        (b'{"external_id": "a", "display_name": "b\\\\\\u0000c"}', "NUL character"),
        (b'{"external_id": "a", "display_name": "\xff\xfe"}', "not valid UTF-8"),
        (b'{"external_id": "a", "display_name": "\xed\xa0\x80"}', "not valid UTF-8"),
        (b'{"external_id": "a", "display_name": "\\ud800"}', "surrogate"),
        (b'{"external_id": "a", "display_name": "x\\udc00"}', "surrogate"),
    ],
)
async def test_unclean_body_text_is_400(
    http: httpx.AsyncClient, tenant: Tenant, body: bytes, why: str
) -> None:
    """NUL (raw or escaped), invalid UTF-8 and lone surrogates never reach a handler."""
    headers = {**await tenant.backend_headers(), "Content-Type": "application/json"}
    response = await http.post("/v1/users", content=body, headers=headers)
    problem = assert_problem(response, 400)
    assert why in str(problem["detail"])
    listed = await http.get("/v1/users", headers=headers)
    assert listed.json()["data"] == []


async def test_an_escaped_backslash_before_u0000_is_text(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """``\\\\u0000`` is a backslash and the letters u0000, not NUL: it is accepted."""
    headers = {**await tenant.backend_headers(), "Content-Type": "application/json"}
    body = b'{"external_id": "a", "display_name": "b\\\\u0000c"}'
    response = await http.post("/v1/users", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "b\\u0000c"


async def test_a_valid_surrogate_pair_is_text(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An escaped surrogate pair is one character (here an emoji) and is accepted."""
    headers = {**await tenant.backend_headers(), "Content-Type": "application/json"}
    body = b'{"external_id": "a", "display_name": "\\ud83d\\ude00 ok"}'
    response = await http.post("/v1/users", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "\U0001f600 ok"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 33 + b"]" * 33, "deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "deeper"),
        (b"[" + b"0," * 10_000 + b"0]", "elements"),
        (b'{"members": [' + b'"usr_x",' * 10_001 + b'"usr_x"]}', "elements"),
    ],
)
async def test_json_shape_limits_are_400(
    http: httpx.AsyncClient, tenant: Tenant, body: bytes, why: str
) -> None:
    """Too deep or too many values: refused before the JSON parser runs."""
    headers = {**await tenant.backend_headers(), "Content-Type": "application/json"}
    response = await http.post("/v1/users", content=body, headers=headers)
    problem = assert_problem(response, 400)
    assert why in str(problem["detail"])


async def test_brackets_inside_strings_do_not_count(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A name made of brackets is text, not nesting."""
    headers = {**await tenant.backend_headers(), "Content-Type": "application/json"}
    name = '[[[[{{{{"' * 10
    response = await http.post(
        "/v1/users", json={"external_id": "brackets", "display_name": name}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == name
