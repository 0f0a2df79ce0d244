"""Who is calling: the authenticated caller handed down to every domain service."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.errors import InsufficientScope

USER_PREFIX = "usr_"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, built from a verified access token.

    ``subject`` is a user id for tokens acting for a user, or the client id for an
    app backend acting for itself; ``actor`` is the client that obtained a delegated
    user token (RFC 8693 ``act``); ``issued_at`` is the token's ``iat``, compared with
    the revoke-before cutoffs.
    user token (RFC 8693 ``act``). ``roles`` are the caller's app roles, filled in by
    the authorizer when a route declares its permission (empty until then).
    """

    app_id: str
    client_id: str
    subject: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    actor: str | None = None
    issued_at: int = 0
    jkt: str | None = None
    """The DPoP key thumbprint the token is bound to (RFC 9449 ``cnf.jkt``), if any."""
    x5t: str | None = None
    """The client certificate the token is bound to (RFC 8705 ``cnf.x5t#S256``), if any."""
    roles: frozenset[str] = frozenset()

    @property
    def user_id(self) -> str | None:
        """The user this token acts for, or None for an app backend token."""
        return self.subject if self.subject.startswith(USER_PREFIX) else None

    def require(self, scope: str) -> None:
        """Raise ``InsufficientScope`` unless the token was granted ``scope``."""
        if scope not in self.scopes:
            raise InsufficientScope(scope)
