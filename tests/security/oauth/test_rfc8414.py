"""Discovery documents (RFC 8414, OpenID Connect Discovery) advertise what is implemented."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.support.dpop import DPoPKey
from tests.support.oauth import (
    Browser,
    authorize_params,
    obtain_code,
    pkce_pair,
    query_of,
    redeem,
    register_client,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_metadata_matches_the_implementation(
    http: httpx.AsyncClient, server: ServerThread
) -> None:
    """Endpoints, grants, PKCE S256 only, auth methods, revocation and introspection."""
    issuer = server.settings.issuer
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == issuer
    assert meta["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert meta["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    # Mutual TLS is off on this server: neither RFC 8705 method nor bound tokens appear.
    assert "tls_client_auth" not in meta["token_endpoint_auth_methods_supported"]
    assert "tls_client_certificate_bound_access_tokens" not in meta


async def test_openid_configuration_is_consistent(
    http: httpx.AsyncClient, server: ServerThread
) -> None:
    """The OIDC document repeats the RFC 8414 facts and adds the ID token's."""
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    oidc = (await http.get("/.well-known/openid-configuration")).json()
    assert {k: oidc[k] for k in meta} == meta
    assert oidc["subject_types_supported"] == ["public"]
    assert oidc["id_token_signing_alg_values_supported"] == [server.services.keys.alg]
    assert oidc["end_session_endpoint"] == f"{server.settings.issuer}/oauth/logout"


async def test_every_advertised_endpoint_exists(http: httpx.AsyncClient) -> None:
    """No advertised endpoint answers 404 or 405."""
    meta = (await http.get("/.well-known/openid-configuration")).json()
    for name in ("authorization_endpoint", "end_session_endpoint", "jwks_uri"):
        response = await http.get(meta[name])
        assert response.status_code not in (404, 405), name
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        response = await http.post(meta[name], data={"x": "y"})
        assert response.status_code in (400, 401), name


async def _document(http: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await http.get("/.well-known/openid-configuration")).json()
    return document


async def test_dpop_algorithms_advertised_are_exactly_those_accepted(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 9449 §5.1: a proof signed with each advertised algorithm binds a token; one
    signed with an algorithm not advertised is refused."""
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    advertised = meta["dpop_signing_alg_values_supported"]
    assert advertised == list(server.settings.resource_server.dpop_algorithms)
    url = server.settings.public_url + "/oauth/token"
    for alg in advertised:
        proof = DPoPKey(alg).proof("POST", url)
        bound = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.client_id, tenant.client_secret),
            headers={"DPoP": proof},
        )
        assert bound.status_code == 200, (alg, bound.text)
        assert bound.json()["token_type"] == "DPoP", alg
    for alg in sorted({"ES384", "ES512", "RS512"} - set(advertised)):
        refused = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.client_id, tenant.client_secret),
            headers={"DPoP": DPoPKey(alg).proof("POST", url)},
        )
        assert refused.status_code == 400, alg
        assert refused.json()["error"] == "invalid_dpop_proof", alg


async def test_every_advertised_url_is_served(http: httpx.AsyncClient) -> None:
    """Every *_endpoint, *_uri and documentation URL answers (none is 404 or 405)."""
    meta = await _document(http)
    urls = {
        k: v
        for k, v in meta.items()
        if k.endswith(("_endpoint", "_uri", "_documentation")) and isinstance(v, str)
    }
    assert "service_documentation" not in urls  # /docs is served only with debug on
    for name, url in urls.items():
        path = url.removeprefix(meta["issuer"])
        response = await http.get(path)
        if response.status_code == 405:
            response = await http.post(path, data={"x": "y"})
        assert response.status_code not in (404, 405), name


async def test_grant_and_response_types_match_the_endpoints(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Advertised grant types are understood; others (password, implicit) are not."""
    meta = await _document(http)
    for grant in meta["grant_types_supported"]:
        answer = await tenant.token_request(grant_type=grant)
        assert answer.json().get("error") != "unsupported_grant_type", grant
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        answer = await tenant.token_request(grant_type=grant, username="u", password="p")
        assert answer.json()["error"] == "unsupported_grant_type", grant


async def test_authorization_request_features_match_the_document(
    server: ServerThread, tenant: Tenant
) -> None:
    """Response types, response modes, PKCE methods, prompt values and request objects
    the document does not list are refused with the RFC error codes."""
    meta = await _document(tenant.http)
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    client = await register_client(tenant)
    _, challenge = pkce_pair()
    refused = {
        "response_type": ("token", "unsupported_response_type"),
        "response_mode": ("fragment", "invalid_request"),
        "code_challenge_method": ("plain", "invalid_request"),
        "prompt": ("select_account", "invalid_request"),
        "request_uri": ("urn:example:request", "request_uri_not_supported"),
        "request": ("e30.e30.", "request_not_supported"),
    }
    assert "token" not in meta["response_types_supported"]
    assert "fragment" not in meta["response_modes_supported"]
    assert "plain" not in meta["code_challenge_methods_supported"]
    assert "select_account" not in meta["prompt_values_supported"]
    browser = Browser(server.base_url)
    try:
        for name, (value, error) in refused.items():
            answer = await browser.authorize(**authorize_params(client, challenge, **{name: value}))
            assert answer.status_code == 303, name
            assert query_of(answer.headers["location"])["error"] == error, name
        # prompt=none is advertised: without a session it answers login_required.
        silent = await browser.authorize(**authorize_params(client, challenge, prompt="none"))
        assert query_of(silent.headers["location"])["error"] == "login_required"
    finally:
        await browser.close()


async def test_id_token_claims_are_all_advertised(server: ServerThread, tenant: Tenant) -> None:
    """claims_supported lists every claim an ID token carries."""
    meta = await _document(tenant.http)
    client = await register_client(tenant)
    await user_with_password(tenant, "claims-user")
    code, verifier, _ = await obtain_code(
        server.base_url, client, "claims-user", scope="openid chat:read", nonce="n-1"
    )
    tokens = (await redeem(tenant.http, client, code, verifier)).json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(claims) <= set(meta["claims_supported"]), set(claims) - set(meta["claims_supported"])
    assert meta["id_token_signing_alg_values_supported"] == [server.services.keys.alg]
