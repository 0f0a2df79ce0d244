"""RFC 8414: OAuth 2.0 Authorization Server Metadata.

https://www.rfc-editor.org/rfc/rfc8414

Advertises exactly what this server implements, nothing more.
"""

from __future__ import annotations

from typing import Any

from bastion.security import scopes
from bastion.security.oauth import rfc6749, rfc8693


def metadata(issuer: str, signing_alg: str) -> dict[str, Any]:
    """Return the authorization server metadata document (§2)."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": [rfc6749.CLIENT_CREDENTIALS, rfc8693.GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "response_types_supported": [],
        "scopes_supported": sorted(scopes.ALL_SCOPES),
        "access_token_signing_alg_values_supported": [signing_alg],
        "service_documentation": f"{issuer}/docs",
    }
