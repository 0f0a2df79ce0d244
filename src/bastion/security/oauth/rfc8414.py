"""RFC 8414: OAuth 2.0 Authorization Server Metadata, and OpenID Connect Discovery 1.0.

https://www.rfc-editor.org/rfc/rfc8414
https://openid.net/specs/openid-connect-discovery-1_0.html

Advertises exactly what this server implements, nothing more: the code flow with
PKCE ``S256`` only, refresh tokens, client credentials and token exchange; client
authentication by ``client_secret_basic``, ``private_key_jwt`` or (public clients)
``none``; revocation and introspection; DPoP proofs (RFC 9449 §5.1) with the
algorithms the proof validator accepts. Fields whose absence would mean "supported"
(OpenID Connect Discovery's ``request_uri_parameter_supported``) are stated as false.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.security import scopes
from bastion.security.oauth import oidc, rfc7523, rfc7636
from bastion.security.oauth.clients import AUTH_METHODS
from bastion.security.oauth.server import GRANT_TYPES

_CONFIDENTIAL_METHODS = [m for m in AUTH_METHODS if m != "none"]


def metadata(
    issuer: str, signing_alg: str, dpop_algs: Sequence[str], *, docs: bool = False
) -> dict[str, Any]:
    """Return the authorization server metadata document (§2).

    ``docs`` says whether the interactive API documentation is served (debug only).
    """
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": sorted(scopes.ALL_SCOPES | {oidc.OPENID}),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(rfc7523.ALGORITHMS),
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": _CONFIDENTIAL_METHODS,
        "code_challenge_methods_supported": list(rfc7636.METHODS),
        "authorization_response_iss_parameter_supported": True,
        "access_token_signing_alg_values_supported": [signing_alg],
        "dpop_signing_alg_values_supported": list(dpop_algs),
    }
    if docs:
        document["service_documentation"] = f"{issuer}/docs"
    return document


def openid_configuration(
    issuer: str, signing_alg: str, dpop_algs: Sequence[str], *, docs: bool = False
) -> dict[str, Any]:
    """OpenID Provider metadata (Discovery §3): the same facts, plus the ID token's."""
    document = metadata(issuer, signing_alg, dpop_algs, docs=docs)
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
