"""RFC 8414: OAuth 2.0 Authorization Server Metadata, and OpenID Connect Discovery 1.0.

https://www.rfc-editor.org/rfc/rfc8414
https://openid.net/specs/openid-connect-discovery-1_0.html

Advertises exactly what this server implements, nothing more: the code flow with
PKCE ``S256`` only, refresh tokens, client credentials and token exchange; client
authentication by ``client_secret_basic``, ``private_key_jwt``, (public clients)
``none`` and, only when mutual TLS is enabled, ``tls_client_auth`` with
certificate-bound access tokens (RFC 8705 §2.3, §3.3); revocation and introspection;
DPoP proofs (RFC 9449 §5.1) with the algorithms the proof validator accepts. Fields
whose absence would mean "supported" (OpenID Connect Discovery's
``request_uri_parameter_supported``) are stated as false.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.security import scopes
from bastion.security.oauth import oidc, rfc7523, rfc7636, rfc8705
from bastion.security.oauth.clients import AUTH_METHODS
from bastion.security.oauth.server import GRANT_TYPES


def metadata(
    issuer: str,
    signing_alg: str,
    dpop_algs: Sequence[str],
    *,
    docs: bool = False,
    mtls: bool = False,
) -> dict[str, Any]:
    """Return the authorization server metadata document (§2).

    ``docs`` says whether the interactive API documentation is served (debug only);
    ``mtls`` whether clients may authenticate with a certificate.
    """
    methods = [m for m in AUTH_METHODS if mtls or m != rfc8705.TLS_CLIENT_AUTH]
    confidential = [m for m in methods if m != "none"]
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": sorted(scopes.ALL_SCOPES | {oidc.OPENID}),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": list(rfc7523.ALGORITHMS),
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": confidential,
        "code_challenge_methods_supported": list(rfc7636.METHODS),
        "authorization_response_iss_parameter_supported": True,
        "access_token_signing_alg_values_supported": [signing_alg],
        "dpop_signing_alg_values_supported": list(dpop_algs),
    }
    if docs:
        document["service_documentation"] = f"{issuer}/docs"
    if mtls:
        # RFC 8705 §3.3: tokens of clients that authenticate with a certificate are bound.
        document["tls_client_certificate_bound_access_tokens"] = True
    return document


def openid_configuration(
    issuer: str,
    signing_alg: str,
    dpop_algs: Sequence[str],
    *,
    docs: bool = False,
    mtls: bool = False,
) -> dict[str, Any]:
    """OpenID Provider metadata (Discovery §3): the same facts, plus the ID token's."""
    document = metadata(issuer, signing_alg, dpop_algs, docs=docs, mtls=mtls)
    document.update(
        {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [signing_alg],
            "claims_supported": list(oidc.ID_TOKEN_CLAIMS),
            "end_session_endpoint": f"{issuer}/oauth/logout",
            "prompt_values_supported": ["none", "login", "consent"],
            # Discovery §3: an absent request_uri_parameter_supported means true.
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
        }
    )
    return document
