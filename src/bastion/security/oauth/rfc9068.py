"""RFC 9068: JSON Web Token (JWT) Profile for OAuth 2.0 Access Tokens.

https://www.rfc-editor.org/rfc/rfc9068

Validation follows §4 and RFC 8725: the algorithm comes from our allow-list, never
from the token; the key comes from our key set by ``kid``; ``typ`` must be
``at+jwt``; ``iss`` and ``aud`` must match exactly; ``exp`` must be in the future.
Every failure raises the same ``InvalidAccessToken``, which never says which check
failed.
"""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bastion.security.keys import SigningKey

TOKEN_TYPE = "at+jwt"
_ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt"})
_REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
_MAX_TOKEN_LENGTH = 8192


class InvalidAccessTokenError(Exception):
    """The token is not a valid access token for this server (reason deliberately hidden)."""


def encode(key: SigningKey, alg: str, claims: dict[str, Any]) -> str:
    """Sign ``claims`` as an ``at+jwt`` access token (§2.1)."""
    header = {"alg": alg, "typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[alg])


def decode(
    token: str,
    keys: KeySet,
    *,
    algorithms: list[str],
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
) -> dict[str, Any]:
    """Verify an access token and return its claims (§4)."""
    if len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidAccessTokenError
    try:
        verified = jwt.decode(token, keys, algorithms=algorithms)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidAccessTokenError from exc
    if verified.header.get("typ") not in _ACCEPTED_TYP:
        raise InvalidAccessTokenError
    claims = dict(verified.claims)
    _check_claims(claims, issuer=issuer, audience=audience, now=now, leeway=leeway)
    return claims


def _check_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, now: int, leeway: int
) -> None:
    if any(name not in claims for name in _REQUIRED_CLAIMS):
        raise InvalidAccessTokenError
    if claims["iss"] != issuer:
        raise InvalidAccessTokenError
    aud = claims["aud"]
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidAccessTokenError
    exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", claims["iat"])
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat, nbf)):
        raise InvalidAccessTokenError
    if exp <= now - leeway or nbf > now + leeway or iat > now + leeway:
        raise InvalidAccessTokenError
    if not all(isinstance(claims[name], str) for name in ("sub", "client_id", "jti")):
        raise InvalidAccessTokenError
