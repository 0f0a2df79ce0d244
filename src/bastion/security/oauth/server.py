"""The token endpoint: parses the form, authenticates the client, runs the grant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.core.errors import OAuthError
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security import scopes as scope_names
from bastion.security.oauth import clients as client_kinds
from bastion.security.oauth import rfc6749, rfc8693, rfc8705
from bastion.security.oauth.clients import Client, ClientRegistry
from bastion.security.oauth.grants import Grants
from bastion.security.oauth.rfc8693 import UserDirectory
from bastion.security.tokens import AccessTokens, IssuedToken
from bastion.store.records import ClientRecord

_MAX_PARAM_LENGTH = 4096
GRANT_TYPES = (
    client_kinds.AUTHORIZATION_CODE,
    client_kinds.REFRESH_TOKEN,
    rfc6749.CLIENT_CREDENTIALS,
    rfc8693.GRANT_TYPE,
)
"""Every grant the token endpoint implements; implicit and password are not among them."""


@dataclass(frozen=True, slots=True)
class Binding:
    """What the issued access token is bound to: a DPoP key, a client certificate, both."""

    jkt: str | None = None
    x5t: str | None = None


class TokenEndpoint:
    """Implements ``POST /oauth/token`` for the grants Bastion supports."""

    def __init__(
        self,
        *,
        clients: ClientRegistry,
        users: UserDirectory,
        grants: Grants,
        events: SecurityEvents,
        tokens: AccessTokens,
        audience: str,
        client_token_ttl: int,
        user_token_ttl: int,
        id_tokens: rfc8693.IdTokenUsers | None = None,
        dpop_required: frozenset[str] = frozenset(),
    ) -> None:
        self._clients = clients
        self._users = users
        self._grants = grants
        self._events = events
        self._tokens = tokens
        self._audience = audience
        self._client_ttl = client_token_ttl
        self._user_ttl = user_token_ttl
        self._id_tokens = id_tokens
        self._dpop_required = dpop_required

    async def handle(
        self,
        form: Sequence[tuple[str, str]],
        authorization: str | None,
        origin: Origin | None = None,
        *,
        dpop_jkt: str | None = None,
        certificate: bytes | None = None,
    ) -> dict[str, Any]:
        """Answer a token request with an RFC 6749 §5.1 body, or raise ``OAuthError``.

        ``dpop_jkt`` is the thumbprint of a verified DPoP proof (RFC 9449 §5): the token
        is then bound to that key and its type is ``DPoP``. ``certificate`` is the DER
        client certificate of the connection: a ``tls_client_auth`` client authenticates
        with it, and its tokens are bound to it (RFC 8705 §3).
        """
        params = single_valued(form)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", "This grant type is not supported.")
        client = await self._clients.authenticate(params, authorization, certificate)
        if not client.allows(grant_type):
            raise OAuthError("unauthorized_client", "This client may not use this grant type.")
        if dpop_jkt is None and client.id in self._dpop_required:
            raise OAuthError("invalid_dpop_proof", "This client must send a DPoP proof.")
        bound = Binding(dpop_jkt, _certificate_binding(client, certificate))
        if grant_type == client_kinds.AUTHORIZATION_CODE:
            return await self._grants.redeem_code(
                client, params, origin, jkt=bound.jkt, x5t=bound.x5t
            )
        if grant_type == client_kinds.REFRESH_TOKEN:
            return await self._grants.refresh(client, params, origin, jkt=bound.jkt, x5t=bound.x5t)
        return await self._backend_grant(grant_type, params, client, origin, bound)

    async def _backend_grant(
        self,
        grant_type: str,
        params: Mapping[str, str],
        client: Client,
        origin: Origin | None,
        bound: Binding,
    ) -> dict[str, Any]:
        if grant_type == rfc6749.CLIENT_CREDENTIALS:
            issued = self._client_credentials(params, client.record, bound)
        else:
            issued = await rfc8693.exchange(
                params,
                client.record,
                directory=self._users,
                tokens=self._tokens,
                audience=self._audience,
                ttl=self._user_ttl,
                id_tokens=self._id_tokens,
                jkt=bound.jkt,
                x5t=bound.x5t,
            )
        actor = Actor(app_id=client.app_id, subject=issued.principal.subject, client_id=client.id)
        await self._events.emit(
            "token.issue", "success", actor=actor, origin=origin, details={"grant": grant_type}
        )
        return _response(issued, exchanged=grant_type == rfc8693.GRANT_TYPE, bound=bound.jkt)

    def _client_credentials(
        self, params: Mapping[str, str], client: ClientRecord, bound: Binding
    ) -> IssuedToken:
        """§4.4: the client acts for itself, within the scopes it was registered with."""
        allowed = client.scopes & (scope_names.BACKEND_SCOPES | scope_names.OPERATOR_SCOPES)
        scopes = rfc6749.granted_scopes(scope_names.parse(params.get("scope")), allowed)
        return self._tokens.issue(
            app_id=client.app_id,
            client_id=client.id,
            subject=client.id,
            scopes=scopes,
            ttl=self._client_ttl,
            jkt=bound.jkt,
            x5t=bound.x5t,
        )


def _certificate_binding(client: Client, certificate: bytes | None) -> str | None:
    """RFC 8705 §3: a client that authenticated with its certificate gets tokens bound
    to it (the ``x5t#S256`` confirmation)."""
    if client.uses_certificate and certificate is not None:
        return rfc8705.thumbprint(certificate)
    return None


def single_valued(form: Sequence[tuple[str, str]]) -> dict[str, str]:
    """§3.2: parameters MUST NOT be included more than once; empty ones count as absent.

    A name given twice is refused even when one of the values is empty, so that no
    reading of a polluted request can pick a different value than another.
    """
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in form:
        if name in seen:
            raise OAuthError("invalid_request", f"The parameter {name!r} is repeated.")
        seen.add(name)
        if len(value) > _MAX_PARAM_LENGTH:
            raise OAuthError("invalid_request", f"The parameter {name!r} is too long.")
        if value:
            params[name] = value
    return params


def _response(issued: IssuedToken, *, exchanged: bool, bound: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.token,
        # RFC 9449 §5.1: a bound token is of type DPoP.
        "token_type": "DPoP" if bound else "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if exchanged:
        body["issued_token_type"] = rfc8693.ACCESS_TOKEN_TYPE
    return body
