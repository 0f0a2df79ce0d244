"""RFC 9068: JSON Web Token (JWT) Profile for OAuth 2.0 Access Tokens.

https://www.rfc-editor.org/rfc/rfc9068

Validation follows §4 and RFC 8725: the algorithm comes from our allow-list, never
from the token; the key comes from our key set by ``kid``; ``typ`` must be
``at+jwt``; ``iss`` and ``aud`` must match exactly; ``exp`` must be in the future;
the profile's claims, ``scope`` included, must all be present.
The same checks serve tokens of trusted external issuers, with their own key sets,
algorithm lists and accepted ``typ`` values.
Every failure raises the same ``InvalidAccessToken``, which never says which check
failed.
"""

from __future__ import annotations

from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from bastion.security.keys import SigningKey

TOKEN_TYPE = "at+jwt"
ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope")
"""Bastion's own profile: §2.2's claims plus ``scope`` (§2.2.3), which every token we
issue carries (empty when nothing was granted) and every route's check reads."""
MAX_TOKEN_LENGTH = 8192
# RFC 8725 §3.10 and ASVS 9.1.3: keys come only from our configured key sets, so a
# token naming its own key source (URL, embedded key or certificate) is refused; `crit`
# would demand extensions we do not implement (RFC 7515 §4.1.11).
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


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
    accepted_typ: frozenset[str] = ACCEPTED_TYP,
    required_claims: tuple[str, ...] = REQUIRED_CLAIMS,
    max_length: int = MAX_TOKEN_LENGTH,
) -> dict[str, Any]:
    """Verify an access token and return its claims (§4)."""
    header, claims = verify_signature(token, keys, algorithms=algorithms, max_length=max_length)
    if header.get("typ") not in accepted_typ:
        raise InvalidAccessTokenError
    check_claims(
        claims, issuer=issuer, audience=audience, now=now, leeway=leeway, required=required_claims
    )
    return claims


def verify_signature(
    token: str, keys: KeySet, *, algorithms: list[str], max_length: int = MAX_TOKEN_LENGTH
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the header rules and the signature; return the header and the claims.

    The header must name an allowed ``alg`` and a ``kid`` found in ``keys``; the key
    must be registered for exactly that algorithm (RFC 8725 §3.1: one algorithm per
    key), so a public key can never be replayed as an HMAC secret.
    """
    if len(token) > max_length or token.count(".") != 2:
        raise InvalidAccessTokenError
    try:
        header = dict(jws.extract_compact(token.encode("ascii")).protected)
        key = _key_for(header, keys, algorithms)
        verified = jwt.decode(token, key, algorithms=[header["alg"]])
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError) as exc:
        raise InvalidAccessTokenError from exc
    claims = dict(verified.claims)
    return header, claims


def _key_for(header: dict[str, Any], keys: KeySet, algorithms: list[str]) -> Key:
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in algorithms or not isinstance(kid, str) or _FORBIDDEN_HEADERS & header.keys():
        raise InvalidAccessTokenError
    key = keys.get_by_kid(kid)
    if key.get("alg") != alg:
        raise InvalidAccessTokenError
    return key


def check_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
    required: tuple[str, ...] = REQUIRED_CLAIMS,
) -> None:
    """The §4 claim checks: exact ``iss``, ``aud`` containing us, times within leeway."""
    if any(name not in claims for name in required):
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
    names = ("sub", "client_id", "jti")
    if not all(isinstance(claims[name], str) for name in names if name in claims):
        raise InvalidAccessTokenError
    # §2.2.3 (RFC 8693 §4.2): a space-delimited string. Only where the profile requires
    # it: an external issuer may send another shape, which its own mapping ignores.
    if "scope" in required and not isinstance(claims["scope"], str):
        raise InvalidAccessTokenError
