"""RFC 7662: OAuth 2.0 Token Introspection.

https://www.rfc-editor.org/rfc/rfc7662

Only authenticated confidential clients may introspect (§2.1). A token that is
expired, revoked, unknown, malformed or from another app is answered with exactly
``{"active": false}`` (§2.2), so the endpoint is no oracle for other apps' tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.core.errors import OAuthError, Unauthenticated, Unavailable
from bastion.security import scopes as scope_names
from bastion.security.oauth import rfc6749
from bastion.security.oauth.clients import Client
from bastion.security.oauth.grants import Grants
from bastion.security.tokens import AccessTokens

INACTIVE: dict[str, Any] = {"active": False}


async def introspect(
    params: Mapping[str, str],
    client: Client,
    *,
    grants: Grants,
    tokens: AccessTokens,
    issuer: str,
    audience: str,
) -> dict[str, Any]:
    """§2.2: describe an active token of the caller's app, or say it is inactive."""
    if client.is_public:
        raise rfc6749.invalid_client("Introspection requires client authentication.")
    token = params.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required.")
    if token.count(".") == 2:
        return _access(token, client, tokens, issuer, audience)
    return await _refresh(token, client, grants, issuer)


def _access(
    token: str, client: Client, tokens: AccessTokens, issuer: str, audience: str
) -> dict[str, Any]:
    try:
        principal = tokens.authenticate(token)
    except (Unauthenticated, Unavailable):
        return dict(INACTIVE)
    if principal.app_id != client.app_id:
        return dict(INACTIVE)
    body: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "scope": scope_names.render(principal.scopes),
        "client_id": principal.client_id,
        "sub": principal.subject,
        "exp": principal.expires_at,
        "iss": issuer,
        "aud": audience,
        "jti": principal.token_id,
    }
    if principal.actor is not None:
        body["act"] = {"sub": principal.actor}
    return body


async def _refresh(token: str, client: Client, grants: Grants, issuer: str) -> dict[str, Any]:
    state = await grants.refresh_state(token)
    if state is None or state[0].client_id != client.id:
        return dict(INACTIVE)
    grant, expires_at = state
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "exp": int(expires_at.timestamp()),
        "iat": int(grant.created_at.timestamp()),
        "iss": issuer,
    }
