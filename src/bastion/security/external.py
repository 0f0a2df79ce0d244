"""Users of trusted external OpenID Providers: their tokens become Bastion principals.

A user is keyed by (issuer, subject) — never by an e-mail address or another claim two
providers could both assert (ASVS 6.8.1) — and provisioned just in time the first time
one of their tokens is seen. The configured claims give the user's external id and
display name; a claim of groups or roles maps to a Bastion role, which decides the
scopes (``member``: read and write chat; ``reader``: read only).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError

from bastion.core.clock import Clock
from bastion.core.errors import Unauthenticated, Unavailable
from bastion.core.settings import ExternalIssuerSettings
from bastion.observe.events import Actor, SecurityEvents
from bastion.security import scopes as scope_names
from bastion.security.issuers import ExternalIssuer
from bastion.security.oauth.rfc9068 import InvalidAccessTokenError
from bastion.security.principal import Principal
from bastion.security.tokens import Revocations

ROLE_SCOPES = {
    "member": frozenset({scope_names.CHAT_READ, scope_names.CHAT_WRITE}),
    "reader": frozenset({scope_names.CHAT_READ}),
}
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:@|+=-]{1,255}$")
_NAME_MAX = 200


class IdentityStore(Protocol):
    """Finds or provisions the Bastion user behind an external (issuer, subject)."""

    async def user_for(
        self, app_id: str, issuer: str, subject: str, *, external_id: str, display_name: str
    ) -> str | None:
        """The linked user's id, creating user and link on first sight.

        None when the external id is already taken by a user linked to another
        identity: linking it would let one provider take over another's account.
        """
        ...


@dataclass(frozen=True, slots=True)
class ExternalUser:
    """The Bastion user an external token or ID token stands for."""

    app_id: str
    user_id: str
    scopes: frozenset[str]


def peek_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a JWT, only to choose which keys to verify it with."""
    try:
        payload = jws.extract_compact(token.encode("ascii")).payload
        claims = json.loads(payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def role_of(config: ExternalIssuerSettings, claims: dict[str, Any]) -> str | None:
    """The Bastion role the claims map to: the strongest mapped one, else the default."""
    found = claims.get(config.role_claim) if config.role_claim else None
    values: Iterable[object] = found if isinstance(found, list) else [found]
    mapped = {config.role_map[v] for v in values if isinstance(v, str) and v in config.role_map}
    for role in ("member", "reader"):
        if role in mapped:
            return role
    return config.default_role


def _names(config: ExternalIssuerSettings, claims: dict[str, Any]) -> tuple[str, str]:
    external_id = claims.get(config.user_claim)
    if not isinstance(external_id, str) or not _EXTERNAL_ID.match(external_id):
        raise InvalidAccessTokenError
    name = claims.get(config.name_claim)
    display = name.strip()[:_NAME_MAX] if isinstance(name, str) and name.strip() else external_id
    return external_id, display


class ExternalIdentities:
    """Every configured provider, with a cache of verified tokens; revocation still wins."""

    def __init__(
        self,
        issuers: list[ExternalIssuer],
        *,
        store: IdentityStore,
        revocations: Revocations,
        events: SecurityEvents,
        clock: Clock,
        cache_size: int,
    ) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._store = store
        self._revocations = revocations
        self._events = events
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    def issuer_of(self, token: str) -> ExternalIssuer | None:
        """The configured provider a token claims to come from, if any."""
        if not self._issuers:
            # Nothing to choose between: skip decoding the claims of every token presented.
            return None
        issuer = peek_issuer(token)
        return self._issuers.get(issuer) if issuer is not None else None

    def by_app(self, app_id: str) -> list[ExternalIssuer]:
        """The providers whose users belong to ``app_id``."""
        return [i for i in self._issuers.values() if i.config.app_id == app_id]

    async def authenticate(self, issuer: ExternalIssuer, token: str) -> Principal:
        """The principal of a valid access token of ``issuer``; ``Unauthenticated`` otherwise."""
        if not self._revocations.loaded:
            raise Unavailable("The server is starting; retry shortly.")
        now = int(self._clock.timestamp())
        principal = self._cache.get(token)
        if principal is None:
            principal = await self._verify(issuer, token)
        elif principal.expires_at <= now:
            del self._cache[token]
            raise Unauthenticated("The access token has expired.")
        if self._revocations.is_revoked(principal):
            raise Unauthenticated("The access token has been revoked.")
        return principal

    async def _verify(self, issuer: ExternalIssuer, token: str) -> Principal:
        try:
            claims = await issuer.verify_access_token(token)
            user = await self._user(issuer, claims)
            principal = _principal(user, claims, token)
        except (InvalidAccessTokenError, TypeError) as exc:
            await self._report(issuer, "failure", "invalid_token")
            raise Unauthenticated("The access token is invalid or has expired.") from exc
        await self._report(issuer, "success", None, principal)
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def user_from_id_token(self, app_id: str, token: str) -> ExternalUser | None:
        """The user behind an ID token of one of the app's providers, or None (RFC 8693)."""
        issuer = self.issuer_of(token)
        if issuer is None or issuer.config.app_id != app_id:
            return None
        try:
            claims = await issuer.verify_id_token(token)
            return await self._user(issuer, claims)
        except InvalidAccessTokenError:
            await self._report(issuer, "failure", "invalid_id_token")
            return None

    async def _user(self, issuer: ExternalIssuer, claims: dict[str, Any]) -> ExternalUser:
        config = issuer.config
        role = role_of(config, claims)
        subject = claims["sub"]
        if role is None or not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise InvalidAccessTokenError
        external_id, display_name = _names(config, claims)
        user_id = await self._store.user_for(
            config.app_id,
            issuer.issuer,
            subject,
            external_id=external_id,
            display_name=display_name,
        )
        if user_id is None:
            raise InvalidAccessTokenError
        return ExternalUser(config.app_id, user_id, ROLE_SCOPES[role])

    async def _report(
        self,
        issuer: ExternalIssuer,
        outcome: str,
        reason: str | None,
        principal: Principal | None = None,
    ) -> None:
        actor = Actor(
            app_id=issuer.config.app_id,
            subject=principal.subject if principal else None,
            client_id=principal.client_id if principal else None,
        )
        await self._events.emit(
            "auth.external_token",
            "success" if outcome == "success" else "failure",
            actor=actor,
            reason=reason,
            details={"issuer": issuer.issuer},
        )


def _principal(user: ExternalUser, claims: dict[str, Any], token: str) -> Principal:
    jti = claims.get("jti")
    token_id = jti if isinstance(jti, str) else hashlib.sha256(token.encode()).hexdigest()[:32]
    client = claims.get("client_id", claims.get("azp"))
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if cnf is not None and not isinstance(jkt, str):
        raise TypeError("unsupported confirmation method")
    return Principal(
        app_id=user.app_id,
        client_id=client if isinstance(client, str) else claims["iss"],
        subject=user.user_id,
        scopes=_granted(user.scopes, claims.get("scope")),
        token_id=f"ext:{token_id}",
        expires_at=claims["exp"],
        issued_at=claims["iat"],
        jkt=jkt,
    )


def _granted(allowed: frozenset[str], scope: object) -> frozenset[str]:
    """The role's scopes, narrowed to the token's own Bastion scopes if it names any."""
    named = scope_names.parse(scope) if isinstance(scope, str) else frozenset()
    return (allowed & named) if named & scope_names.ALL_SCOPES else allowed
