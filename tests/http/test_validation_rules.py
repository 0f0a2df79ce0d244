"""Allow-lists and text rules through the API: query filters, names, reactions, message HTML."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bastion.http.permissions import declared
from tests.conftest import Databases, make_settings, start_server
from tests.support.callers import credentials, for_permission, sample_url
from tests.support.messaging import assert_problem, reaction_url
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant


@pytest.mark.parametrize(
    ("path", "query"),
    [("/v1/users", "actve=false"), ("/v1/users", "limit=5&sort=name"), ("/v1/users", "%3Cx%3E=1")],
)
async def test_an_unknown_query_parameter_is_422(
    http: httpx.AsyncClient, tenant: Tenant, path: str, query: str
) -> None:
    """A filter the route does not have is refused, never silently ignored."""
    response = await http.get(f"{path}?{query}", headers=await tenant.backend_headers())
    body = assert_problem(response, 422, "validation-failed")
    fields = [e["field"] for e in body["errors"]]
    assert all(f.startswith("query") for f in fields)
    assert "<x>" not in response.text


_OAUTH_ENDPOINTS = {"/oauth/token", "/oauth/revoke", "/oauth/introspect"}


def _names_bogus(path: str, response: httpx.Response) -> bool:
    """A 422 problem whose only failing field is ``query.bogus``; on the OAuth token,
    revocation and introspection endpoints an RFC 6749 §5.2 ``invalid_request`` that
    names it does too."""
    media = response.headers.get("content-type", "")
    if response.status_code == 422 and media.startswith("application/problem+json"):
        return [e["field"] for e in response.json()["errors"]] == ["query.bogus"]
    if path in _OAUTH_ENDPOINTS and response.status_code == 400:
        body = response.json()
        return body["error"] == "invalid_request" and "query.bogus" in body["error_description"]
    return False


async def test_every_operation_refuses_an_unknown_query_parameter(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Every operation of the OpenAPI document, called by a token its permission allows
    (none for public ones), answers ``?bogus=1`` with 422 naming ``query.bogus``; without
    the parameter the same token reads past authentication and authorization."""
    found = await credentials(tenant, await tenant.user("bogus"))
    permissions = {(d.method, d.path): d.permission for d in declared(server.app.api)}
    operations = [
        (method.upper(), path)
        for path, item in server.app.api.openapi()["paths"].items()
        for method in item
    ]
    assert len(operations) > 60
    failures = []
    for method, path in operations:
        credential = for_permission(permissions[(method, path)], found)
        url = sample_url(path) + "?bogus=1"
        headers = credential.headers if credential else {}
        response = await http.request(method, url, headers=headers)
        if not _names_bogus(path, response):
            failures.append((method, path, response.status_code, response.text[:200]))
        if credential is not None and method == "GET":
            # Reads only: a write without its body could still act (revoke the tokens).
            plain = await http.request(method, url.removesuffix("?bogus=1"), headers=headers)
            if plain.status_code in (401, 403):
                failures.append((method, path, plain.status_code, credential.name))
    assert failures == []


async def test_declared_query_parameters_still_work(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Known filters pass the allow-list."""
    response = await http.get(
        "/v1/users?limit=5&active=true", headers=await tenant.backend_headers()
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", ["p\u0430ypal", "\u0410dmin", "Ωmega"])
async def test_a_look_alike_display_name_is_422(
    http: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    """A word mixing scripts with look-alike letters cannot be a display name."""
    headers = await tenant.backend_headers()
    response = await http.post(
        "/v1/users", json={"external_id": "imposter", "display_name": name}, headers=headers
    )
    body = assert_problem(response, 422, "validation-failed", "body.display_name")
    assert name not in response.text
    assert body["errors"][0]["message"] == "The name mixes scripts with look-alike letters."
    created = await tenant.user("real", "Real Name")
    patched = await http.patch(
        f"/v1/users/{created.id}", json={"display_name": name}, headers=headers
    )
    assert_problem(patched, 422, "validation-failed", "body.display_name")


@pytest.mark.parametrize(
    "name", ["Alice Смирнова", "Ελένη Παππά", "山田 太郎", "Zoë 🎉", "\u0645\u062d\u0645\u062f"]
)
async def test_names_in_any_script_are_accepted(
    http: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    """Each word in one script is fine, whatever the script, emoji included."""
    headers = await tenant.backend_headers()
    response = await http.post(
        "/v1/users", json={"external_id": "someone", "display_name": name}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == name


@pytest.mark.parametrize("name", ["bob\u202e", "a\u200bb", "tab\there", "x\u2066y"])
async def test_hidden_characters_in_names_are_422(
    http: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    """Bidi overrides, zero-width spaces and controls are refused in display names."""
    headers = await tenant.backend_headers()
    response = await http.post(
        "/v1/users", json={"external_id": "hidden", "display_name": name}, headers=headers
    )
    assert_problem(response, 422, "validation-failed", "body.display_name")


async def test_messages_carry_raw_text_and_sanitised_html(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The text comes back as sent; ``html`` is rendered Markdown without any script."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    text = "**hi** <script>alert(1)</script> [x](javascript:alert(1)) \u202eevil"
    sent = await tenant.send(alice, channel["id"], text)
    assert sent["text"] == text
    assert sent["html"].startswith("<p><strong>hi</strong> &lt;script&gt;")
    assert "<script" not in sent["html"]
    assert "href" not in sent["html"]
    fetched = await http.get(f"/v1/messages/{sent['id']}", headers=bob.headers)
    assert (fetched.json()["text"], fetched.json()["html"]) == (text, sent["html"])
    assert fetched.headers["content-type"] == "application/json; charset=utf-8"
    assert fetched.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def named_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server whose app-defined reactions are "+1" and "party_parrot"."""
    settings = make_settings(
        tmp_path_factory.mktemp("named"),
        databases.new(),
        validation={"reactions": ["+1", "party_parrot"]},
    )
    running = start_server(settings)
    yield running
    running.stop()


async def test_named_reactions_come_from_the_allow_list(named_server: ServerThread) -> None:
    """Configured names work beside emoji; any other word is 422."""
    async with httpx.AsyncClient(base_url=named_server.base_url, timeout=10) as client:
        tenant = new_tenant(named_server, client)
        alice, bob = await tenant.user("alice"), await tenant.user("bob")
        channel = await tenant.channel(alice, [bob])
        message = await tenant.send(alice, channel["id"], "hello")
        for value in ("+1", "party_parrot", "👍"):
            response = await client.put(reaction_url(message["id"], value), headers=bob.headers)
            assert response.status_code == 200, response.text
        assert response.json()["reactions"] == {"+1": 1, "party_parrot": 1, "👍": 1}
        for value in ("-1", "party", "PARTY_PARROT", "+1 "):
            refused = await client.put(reaction_url(message["id"], value), headers=bob.headers)
            assert_problem(refused, 422, "validation-failed", "path.emoji")
