"""Issuing and checking access tokens, with a cache of verified tokens.

Verifying a signature costs far more than the rest of a request, so a verified
token's claims are remembered until the token expires. Revocation still wins: every
use, cached or not, is checked against the revocation list.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bastion.core.clock import Clock
from bastion.core.errors import Unauthenticated, Unavailable
from bastion.core.ids import Kind, new_id
from bastion.security import scopes as scope_names
from bastion.security.keys import KeyRing
from bastion.security.oauth import rfc8705, rfc9068
from bastion.security.principal import Principal


@dataclass(frozen=True, slots=True)
class Revoked:
    """What was just revoked, for listeners (open sockets): any field may be unknown."""

    app_id: str | None = None
    subject: str | None = None
    token_id: str | None = None


RevocationListener = Callable[[Revoked], None]


class Revocations:
    """Tokens, subjects and issue-time cutoffs that must no longer be accepted (in-process).

    Until ``mark_loaded`` has been called (the persisted revocations have been read from
    the database), no token is accepted at all: a revoked token must never slip through
    because the list was not there yet. Listeners hear of every revocation at once, so
    open WebSockets can be closed without waiting for their next request.
    """

    _PURGE_AT = 10_000
    _WHOLE_APP = ""

    def __init__(self) -> None:
        self._tokens: dict[str, int] = {}
        self._subjects: set[tuple[str, str]] = set()
        self._cutoffs: dict[tuple[str, str], int] = {}
        self._disabled_apps: frozenset[str] = frozenset()
        self._listeners: list[RevocationListener] = []
        self.loaded = False

    def mark_loaded(self) -> None:
        """The persisted revocations are in: tokens may be accepted from now on."""
        self.loaded = True

    def subscribe(self, listener: RevocationListener) -> None:
        """Call ``listener`` after every revocation (it must not block)."""
        self._listeners.append(listener)

    def _notify(self, revoked: Revoked) -> None:
        for listener in self._listeners:
            listener(revoked)

    def revoke_token(
        self, jti: str, expires_at: int, now: int = 0, *, app_id: str | None = None
    ) -> None:
        """Refuse one token from now on (until it expires anyway)."""
        self._tokens[jti] = expires_at
        if len(self._tokens) > self._PURGE_AT:
            self.purge(now)
        self._notify(Revoked(app_id=app_id, token_id=jti))

    def revoke_subject(self, app_id: str, subject: str) -> None:
        """Refuse every token of a subject (a deactivated user) from now on."""
        self._subjects.add((app_id, subject))
        self._notify(Revoked(app_id=app_id, subject=subject))

    def cut_off(self, app_id: str, subject: str | None, issued_before: int) -> None:
        """Refuse every token of the app (or of one subject) issued before a time.

        ``issued_before`` is a Unix time; a token whose ``iat`` is earlier is refused.
        Cutoffs only move forward: an older cutoff never undoes a newer one.
        """
        key = (app_id, subject or self._WHOLE_APP)
        if issued_before > self._cutoffs.get(key, 0):
            self._cutoffs[key] = issued_before
        self._notify(Revoked(app_id=app_id, subject=subject))

    def set_disabled_apps(self, app_ids: Iterable[str]) -> None:
        """Refuse every token of exactly these apps, whoever issued it, from now on; an
        app no longer listed (enabled again) is accepted again."""
        disabled = frozenset(app_ids)
        newly = disabled - self._disabled_apps
        self._disabled_apps = disabled
        for app_id in sorted(newly):
            self._notify(Revoked(app_id=app_id))

    def cutoff(self, app_id: str, subject: str) -> int:
        """The time before which tokens of this subject are refused (0: none)."""
        return max(
            self._cutoffs.get((app_id, self._WHOLE_APP), 0),
            self._cutoffs.get((app_id, subject), 0),
        )

    def is_revoked(self, principal: Principal) -> bool:
        """Tell whether this principal's token has been revoked."""
        return (
            principal.token_id in self._tokens
            or principal.app_id in self._disabled_apps
            or (principal.app_id, principal.subject) in self._subjects
            or principal.issued_at < self.cutoff(principal.app_id, principal.subject)
        )

    def is_subject_revoked(self, principal: Principal) -> bool:
        """Tell whether every token of this principal's subject is refused (a deactivated
        user), as opposed to this one token or those issued before a cutoff."""
        return (principal.app_id, principal.subject) in self._subjects

    def purge(self, now: int) -> None:
        """Forget revoked tokens that have expired anyway."""
        self._tokens = {jti: exp for jti, exp in self._tokens.items() if exp > now}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly signed access token and what it grants."""

    token: str
    expires_in: int
    scope: str
    principal: Principal


class AccessTokens:
    """Signs RFC 9068 access tokens and turns presented tokens into principals."""

    def __init__(
        self,
        *,
        keys: KeyRing,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway: int,
        cache_size: int,
        revocations: Revocations,
        max_token_bytes: int = rfc9068.MAX_TOKEN_LENGTH,
    ) -> None:
        self._keys = keys
        self._max_token_bytes = max_token_bytes
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self.revocations = revocations

    def issue(
        self,
        *,
        app_id: str,
        client_id: str,
        subject: str,
        scopes: frozenset[str],
        ttl: int,
        actor: str | None = None,
        jkt: str | None = None,
        x5t: str | None = None,
    ) -> IssuedToken:
        """Sign a token for ``subject`` that lives ``ttl`` seconds.

        With ``jkt`` the token is bound to that DPoP key (RFC 9449 §6.1, ``cnf.jkt``);
        with ``x5t`` to that client certificate (RFC 8705 §3.1, ``cnf.x5t#S256``).
        """
        now = int(self._clock.timestamp())
        jti = new_id(Kind.TOKEN)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "client_id": client_id,
            "app_id": app_id,
            "scope": scope_names.render(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti,
        }
        if actor is not None:
            claims["act"] = {"sub": actor}
        cnf = {"jkt": jkt, rfc8705.THUMBPRINT: x5t}
        if jkt is not None or x5t is not None:
            claims["cnf"] = {name: value for name, value in cnf.items() if value is not None}
        token = rfc9068.encode(self._keys.active, self._keys.alg, claims)
        principal = _principal(claims)
        return IssuedToken(token=token, expires_in=ttl, scope=claims["scope"], principal=principal)

    def authenticate(self, token: str) -> Principal:
        """Return the principal of a valid token; raise ``Unauthenticated`` otherwise."""
        if not self.revocations.loaded:
            raise Unavailable("The server is starting; retry shortly.")
        now = int(self._clock.timestamp())
        principal = self._cache.get(token)
        if principal is None:
            principal = self._verify(token, now)
        elif principal.expires_at <= now - self._leeway:
            del self._cache[token]
            raise Unauthenticated("The access token has expired.")
        if self.revocations.is_revoked(principal):
            raise Unauthenticated("The access token has been revoked.")
        return principal

    def _verify(self, token: str, now: int) -> Principal:
        try:
            claims = rfc9068.decode(
                token,
                self._keys.verification,
                algorithms=[self._keys.alg],
                issuer=self._issuer,
                audience=self._audience,
                now=now,
                leeway=self._leeway,
                max_length=self._max_token_bytes,
            )
            principal = _principal(claims)
        except (rfc9068.InvalidAccessTokenError, KeyError, TypeError) as exc:
            raise Unauthenticated("The access token is invalid or has expired.") from exc
        self._remember(token, principal)
        return principal

    def _remember(self, token: str, principal: Principal) -> None:
        if self._cache_size == 0:
            return
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _principal(claims: dict[str, Any]) -> Principal:
    app_id = claims["app_id"]
    if not isinstance(app_id, str) or not isinstance(claims.get("scope", ""), str):
        raise TypeError("malformed claims")
    act = claims.get("act")
    actor = act.get("sub") if isinstance(act, dict) else None
    confirmation = _confirmation(claims.get("cnf"))
    return Principal(
        app_id=app_id,
        client_id=claims["client_id"],
        subject=claims["sub"],
        scopes=scope_names.parse(claims.get("scope")),
        token_id=claims["jti"],
        expires_at=claims["exp"],
        actor=actor if isinstance(actor, str) else None,
        issued_at=claims["iat"],
        jkt=confirmation.get("jkt"),
        x5t=confirmation.get(rfc8705.THUMBPRINT),
    )


_CONFIRMATIONS = frozenset({"jkt", rfc8705.THUMBPRINT})


def _confirmation(cnf: object) -> dict[str, str]:
    """The ``cnf`` claim (RFC 7800): a DPoP key (RFC 9449 §6.1, ``jkt``) and/or a client
    certificate (RFC 8705 §3.1, ``x5t#S256``). A method we do not know is refused: the
    token would otherwise be accepted without the proof its issuer demanded."""
    if cnf is None:
        return {}
    if not isinstance(cnf, dict) or not cnf or set(cnf) - _CONFIRMATIONS:
        raise TypeError("malformed cnf claim")
    if not all(isinstance(value, str) for value in cnf.values()):
        raise TypeError("malformed cnf claim")
    return cnf
