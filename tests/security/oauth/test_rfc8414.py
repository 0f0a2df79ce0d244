"""Discovery documents (RFC 8414, OpenID Connect Discovery) advertise what is implemented."""

from __future__ import annotations

import httpx

from tests.support.server import ServerThread


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
