"""RFC 7009: OAuth 2.0 Token Revocation.

https://www.rfc-editor.org/rfc/rfc7009

A client revokes its own tokens (§2.1). The answer is 200 whether or not the token
was known, valid or the client's (§2.2), so the endpoint reveals nothing. Revoking
a refresh token revokes its whole grant, including the access tokens it issued.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.core.errors import OAuthError, Unauthenticated, Unavailable
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security.oauth.clients import Client
from bastion.security.oauth.grants import Grants
from bastion.security.tokens import AccessTokens

HINTS = ("access_token", "refresh_token")


async def revoke(
    params: Mapping[str, str],
    client: Client,
    *,
    grants: Grants,
    tokens: AccessTokens,
    events: SecurityEvents,
    origin: Origin | None = None,
) -> None:
    """§2.1: revoke ``token`` if it is this client's; silently ignore anything else."""
    token = params.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required.")
    hint = params.get("token_type_hint")
    if hint is not None and hint not in HINTS:
        # §2.2.1: unsupported_token_type is for types the server cannot revoke at all.
        raise OAuthError("unsupported_token_type", "token_type_hint is not supported.")
    # §2.1: the hint only orders the lookups; both kinds are tried.
    if hint == "refresh_token" or token.count(".") != 2:
        if not await _revoke_refresh(token, client, grants):
            await _revoke_access(token, client, grants, tokens, events, origin)
    elif not await _revoke_access(token, client, grants, tokens, events, origin):
        await _revoke_refresh(token, client, grants)


async def _revoke_refresh(token: str, client: Client, grants: Grants) -> bool:
    state = await grants.refresh_state(token)
    if state is None or state[0].client_id != client.id:
        return False
    grant = state[0]
    actor = Actor(app_id=grant.app_id, subject=grant.user_id, client_id=client.id)
    await grants.revoke_grant(grant.app_id, grant.id, "revoked_by_client", actor=actor)
    return True


async def _revoke_access(
    token: str,
    client: Client,
    grants: Grants,
    tokens: AccessTokens,
    events: SecurityEvents,
    origin: Origin | None,
) -> bool:
    try:
        principal = tokens.authenticate(token)
    except (Unauthenticated, Unavailable):
        return False
    if principal.client_id != client.id or principal.app_id != client.app_id:
        return False
    await grants.revoke_access_token(principal.token_id, principal.app_id, principal.expires_at)
    actor = Actor(app_id=principal.app_id, subject=principal.subject, client_id=client.id)
    await events.emit(
        "token.revoke", "success", actor=actor, origin=origin, details={"kind": "access_token"}
    )
    return True
