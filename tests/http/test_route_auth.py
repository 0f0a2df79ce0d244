"""Every route either declares the permission (and so the scope) it needs or is
explicitly public, and refuses requests without a valid token — generated from the
mounted routes, so new routes are covered without anyone remembering to add them here."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts

from bastion.core.ids import Kind, new_id
from bastion.http.permissions import declared
from bastion.security.policy import PERMISSIONS
from tests.support import tokens
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    # These authenticate the client (Basic, private_key_jwt, or a public client's id).
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    # The authorization endpoint and the login pages: the user logs in there.
    ("GET", "/oauth/authorize"),
    ("GET", "/oauth/login"),
    ("POST", "/oauth/login"),
    ("GET", "/oauth/login/mfa"),
    ("POST", "/oauth/login/mfa"),
    ("GET", "/oauth/login/enrol"),
    ("POST", "/oauth/login/enrol"),
    ("POST", "/oauth/login/enrolled"),
    ("GET", "/oauth/login/consent"),
    ("POST", "/oauth/login/consent"),
    ("GET", "/oauth/logout"),
    ("POST", "/oauth/logout"),
    ("GET", "/problems/{slug}"),
}
_SAMPLE = {
    "channel_id": new_id(Kind.CHANNEL),
    "message_id": new_id(Kind.MESSAGE),
    "user_id": new_id(Kind.USER),
    "client_id": new_id(Kind.CLIENT),
    "reaction": "%F0%9F%91%8D",
    "slug": "not-found",
    "role": "member",
    "policy": "reads",
}


def _scopes(dependant: Dependant) -> set[str]:
    found = set(dependant.own_oauth_scopes or ())
    for sub in dependant.dependencies:
        found |= _scopes(sub)
    return found


def _routes(server: ServerThread) -> list[tuple[str, str, set[str]]]:
    result = []
    for context in iter_route_contexts(server.app.api.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                result.append((method, context.path, _scopes(route.dependant)))
    return result


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE[m.group(1)], path)


def test_every_route_declares_a_scope_or_is_public(server: ServerThread) -> None:
    """A route without a scope declaration fails the build unless listed as public."""
    undeclared = [
        (method, path)
        for method, path, scopes in _routes(server)
        if not scopes and (method, path) not in PUBLIC
    ]
    assert undeclared == []
    mounted = {(method, path) for method, path, _ in _routes(server)}
    assert mounted >= PUBLIC - {("GET", "/openapi.json")}
    assert len(mounted) > len(PUBLIC)


def test_every_protected_route_declares_a_known_permission(server: ServerThread) -> None:
    """Function level: each non-public route names one permission of the vocabulary, and
    the scope it declares is that permission's scope."""
    scopes_of = {(m, p): s for m, p, s in _routes(server)}
    for item in declared(server.app.api):
        if (item.method, item.path) in PUBLIC:
            assert item.permission is None, item
            continue
        assert item.permission is not None, item
        assert item.permission in PERMISSIONS, item
        assert scopes_of[(item.method, item.path)] == {PERMISSIONS[item.permission].scope}


def test_websocket_is_the_only_websocket_route(server: ServerThread) -> None:
    """The socket authenticates itself (tested in test_websocket); no other socket exists."""
    sockets = [
        context.path
        for context in iter_route_contexts(server.app.api.routes)
        if isinstance(context.original_route, APIWebSocketRoute)
    ]
    assert sockets == ["/v1/ws"]


def test_mounted_routes_are_documented(server: ServerThread) -> None:
    """Mounted routes equal the OpenAPI document's (no undocumented endpoints)."""
    document = server.app.api.openapi()
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    mounted = {(m, p) for m, p, _ in _routes(server) if not p.startswith("/problems/")}
    assert mounted == documented


@pytest.mark.parametrize("credential", ["none", "expired", "wrong_audience", "garbage"])
async def test_protected_routes_refuse_bad_tokens(
    server: ServerThread, http: httpx.AsyncClient, tenant: Tenant, credential: str
) -> None:
    """No token, an expired token, a token for another audience: 401 on every protected route."""
    settings = server.settings
    claims = tokens.claims_for(
        issuer=settings.issuer,
        audience=settings.audience,
        app_id=tenant.app_id,
        subject=new_id(Kind.USER),
        client_id=tenant.client_id,
        scope="chat:read chat:write users:read users:write tokens:exchange",
    )
    keys = server.services.keys
    token = {
        "none": None,
        "expired": tokens.sign(keys, {**claims, "exp": claims["iat"] - 3600}),
        "wrong_audience": tokens.sign(keys, {**claims, "aud": "https://x"}),
        "garbage": "not.a.token",
    }[credential]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    protected = [(m, p) for m, p, _ in _routes(server) if (m, p) not in PUBLIC]
    assert protected
    for method, path in protected:
        body: dict[str, str] | None = {} if method in {"POST", "PUT", "PATCH"} else None
        response = await http.request(method, _url(path), json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert ('error="invalid_token"' in challenge) == (token is not None)
        assert response.json()["status"] == 401
