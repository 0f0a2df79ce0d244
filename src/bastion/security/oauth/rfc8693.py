"""RFC 8693: OAuth 2.0 Token Exchange — an app backend obtains a token for one of its users.

https://www.rfc-editor.org/rfc/rfc8693

The authenticated client is the actor; the subject is named by a Bastion token type:
``…:user-id`` (a Bastion user id) or ``…:external-id`` (the app's own user id), or by
an OpenID Connect ID token (``urn:ietf:params:oauth:token-type:id_token``) of one of the
app's trusted external providers, whose user is provisioned just in time. The
issued access token carries ``act: {"sub": <client id>}`` (§4.1) and only user
scopes, never more than requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bastion.core.errors import OAuthError, Unauthenticated
from bastion.security import scopes as scope_names
from bastion.security.external import ExternalUser
from bastion.security.oauth.rfc6749 import granted_scopes
from bastion.security.tokens import AccessTokens, IssuedToken
from bastion.store.records import ClientRecord

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
USER_ID_TYPE = "urn:bastion:params:oauth:token-type:user-id"
EXTERNAL_ID_TYPE = "urn:bastion:params:oauth:token-type:external-id"
SUBJECT_TOKEN_TYPES = (USER_ID_TYPE, EXTERNAL_ID_TYPE, ID_TOKEN_TYPE)


class UserDirectory(Protocol):
    """Resolves the subject of an exchange to an active user of the app."""

    async def resolve_user(self, app_id: str, token_type: str, value: str) -> str | None:
        """Return the active user's id, or None when there is no such active user."""
        ...


class IdTokenUsers(Protocol):
    """Verifies an external provider's ID token and finds (or provisions) its user."""

    async def user_from_id_token(self, app_id: str, token: str) -> ExternalUser | None:
        """The user behind a valid ID token of one of the app's providers, or None."""
        ...


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


async def exchange(
    params: Mapping[str, str],
    client: ClientRecord,
    *,
    directory: UserDirectory,
    tokens: AccessTokens,
    audience: str,
    ttl: int,
    id_tokens: IdTokenUsers | None = None,
    jkt: str | None = None,
    x5t: str | None = None,
) -> IssuedToken:
    """Run the exchange (§2.1) for an authenticated client and return the new token."""
    if scope_names.TOKENS_EXCHANGE not in client.scopes:
        raise OAuthError("unauthorized_client", "This client may not exchange tokens.")
    _check_target(params, audience)
    subject_type = params.get("subject_token_type")
    subject_token = params.get("subject_token")
    if not subject_token or not subject_type:
        raise _invalid("subject_token and subject_token_type are required.")
    if subject_type not in SUBJECT_TOKEN_TYPES:
        raise _invalid("Unsupported subject_token_type.")
    _check_actor(params, client, tokens)
    requested_type = params.get("requested_token_type", ACCESS_TOKEN_TYPE)
    if requested_type != ACCESS_TOKEN_TYPE:
        raise _invalid("Only access tokens can be requested.")
    allowed = scope_names.USER_SCOPES
    if subject_type == ID_TOKEN_TYPE:
        # §2.1: an ID token from one of the app's trusted providers names the subject;
        # its role mapping caps the scopes.
        found = (
            await id_tokens.user_from_id_token(client.app_id, subject_token) if id_tokens else None
        )
        if found is None:
            raise _invalid("The subject_token is not a valid ID token of a trusted provider.")
        subject_type, subject_token, allowed = USER_ID_TYPE, found.user_id, found.scopes
    user_id = await directory.resolve_user(client.app_id, subject_type, subject_token)
    if user_id is None:
        raise _invalid("The subject is not an active user of this app.")
    requested = scope_names.parse(params.get("scope")) or (
        scope_names.DEFAULT_USER_SCOPES & allowed
    )
    scopes = granted_scopes(requested, allowed)
    return tokens.issue(
        app_id=client.app_id,
        client_id=client.id,
        subject=user_id,
        scopes=scopes,
        ttl=ttl,
        actor=client.id,
        jkt=jkt,
        x5t=x5t,
    )


def _check_target(params: Mapping[str, str], audience: str) -> None:
    for name in ("audience", "resource"):
        value = params.get(name)
        if value is not None and value.rstrip("/") != audience.rstrip("/"):
            raise OAuthError("invalid_target", f"Tokens can only be issued for {audience}.")


def _check_actor(params: Mapping[str, str], client: ClientRecord, tokens: AccessTokens) -> None:
    actor_token = params.get("actor_token")
    actor_type = params.get("actor_token_type")
    if actor_token is None and actor_type is None:
        return
    if not actor_token or actor_type != ACCESS_TOKEN_TYPE:
        raise _invalid("actor_token must be an access token, with its actor_token_type.")
    try:
        actor = tokens.authenticate(actor_token)
    except Unauthenticated as exc:
        raise _invalid("The actor_token is not valid.") from exc
    if actor.subject != client.id or actor.app_id != client.app_id:
        raise _invalid("The actor_token does not belong to the authenticated client.")
