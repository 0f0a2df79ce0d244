"""OpenID Connect Core 1.0: ID tokens for the authorization-code flow.

https://openid.net/specs/openid-connect-core-1_0.html

An ID token is issued when the ``openid`` scope was granted (§3.1.3.3). It is typed
``JWT``, never ``at+jwt``, and addressed to the client, so it cannot pass as an access
token for this API (RFC 8725 §3.11).
"""

from __future__ import annotations

from typing import Any

from joserfc import jwt

from bastion.security.keys import KeyRing

OPENID = "openid"
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "amr")
"""Every claim an ID token may carry (advertised as ``claims_supported``)."""


def id_token(
    keys: KeyRing,
    *,
    issuer: str,
    client_id: str,
    subject: str,
    now: int,
    ttl: int,
    auth_time: int,
    amr: list[str],
    nonce: str | None,
) -> str:
    """Sign an ID token (§2) for ``client_id`` about ``subject``."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "azp": client_id,
        "iat": now,
        "exp": now + ttl,
        "auth_time": auth_time,
        "amr": amr,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    header = {"alg": keys.alg, "typ": "JWT", "kid": keys.active.kid}
    return jwt.encode(header, claims, keys.active, algorithms=[keys.alg])
