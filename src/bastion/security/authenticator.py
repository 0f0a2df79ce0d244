"""The resource server's one entry point for presented access tokens.

A token whose (unverified) ``iss`` names a configured external provider is verified
with that provider's keys and rules; every other token must be one of Bastion's own.
The ``iss`` only chooses the verifier: each verifier then requires it exactly.
"""

from __future__ import annotations

from bastion.security.external import ExternalIdentities
from bastion.security.principal import Principal
from bastion.security.tokens import AccessTokens


class Authenticator:
    """Turns a presented access token into a principal, or raises ``Unauthenticated``."""

    def __init__(self, local: AccessTokens, external: ExternalIdentities) -> None:
        self.local = local
        self.external = external

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid, unrevoked token of Bastion or a trusted provider."""
        issuer = self.external.issuer_of(token)
        if issuer is not None:
            return await self.external.authenticate(issuer, token)
        return self.local.authenticate(token)
