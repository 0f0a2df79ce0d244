"""RFC 7523: JWT Profile for OAuth 2.0 Client Authentication (``private_key_jwt``).

https://www.rfc-editor.org/rfc/rfc7523

The client signs a short-lived JWT with its own private key; we verify it with the
public keys it registered, never with a key the assertion names (§3, RFC 8725 §3.10).
Each ``jti`` is accepted once until the assertion expires (§3 item 7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
_MAX_ASSERTION = 8192


class InvalidAssertionError(Exception):
    """The client assertion is not acceptable (reason deliberately hidden)."""


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified assertion: who it names and until when its jti must be remembered."""

    client_id: str
    jti: str
    expires_at: int


def claimed_client(assertion: str) -> str:
    """The client an assertion claims to come from (``sub``), before any verification."""
    if len(assertion) > _MAX_ASSERTION:
        raise InvalidAssertionError
    try:
        payload = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidAssertionError from exc
    sub = payload.get("sub") if isinstance(payload, dict) else None
    if not isinstance(sub, str) or not sub:
        raise InvalidAssertionError
    return sub


def parse_jwks(document: str) -> KeySet:
    """A client's registered public keys; private key material is refused."""
    data = json.loads(document)
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK Set with at least one key")
    if any(not isinstance(k, dict) or "d" in k or k.get("kty") == "oct" for k in keys):
        raise ValueError("jwks must hold public asymmetric keys only")
    return KeySet.import_key_set(data)


def verify(
    assertion: str,
    *,
    client_id: str,
    keys: KeySet,
    audiences: frozenset[str],
    now: int,
    max_lifetime: int,
    leeway: int,
) -> Assertion:
    """Check signature and claims (§3): iss = sub = client, our audience, short life."""
    try:
        token = jwt.decode(assertion, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise InvalidAssertionError from exc
    claims: dict[str, Any] = token.claims
    aud = claims.get("aud")
    named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    exp, iat, jti = claims.get("exp"), claims.get("iat", now), claims.get("jti")
    checks = (
        claims.get("iss") == client_id and claims.get("sub") == client_id,
        bool(named & audiences),
        isinstance(exp, int) and exp > now - leeway,
        isinstance(iat, int) and iat <= now + leeway,
        isinstance(exp, int) and isinstance(iat, int) and exp - iat <= max_lifetime,
        isinstance(jti, str) and 0 < len(jti) <= 255,
    )
    if not all(checks) or not isinstance(exp, int) or not isinstance(jti, str):
        raise InvalidAssertionError
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > now + leeway:
        raise InvalidAssertionError
    return Assertion(client_id=client_id, jti=jti, expires_at=exp)
