"""Crafting tokens the way an attacker (or a clock) would: forged, expired, mis-addressed."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from bastion.core.ids import Kind, new_id
from bastion.security.keys import KeyRing


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims_for(
    *,
    issuer: str,
    audience: str,
    app_id: str,
    subject: str,
    client_id: str,
    scope: str,
    ttl: int = 300,
    **extra: Any,
) -> dict[str, Any]:
    """A complete, valid-looking claim set."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "app_id": app_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": new_id(Kind.TOKEN),
    }
    claims.update(extra)
    return claims


def sign(keys: KeyRing, claims: dict[str, Any], **header: Any) -> str:
    """Sign with the server's real key (to test claim checks, not signatures).

    A header value of None removes that header.
    """
    head = {"alg": keys.alg, "typ": "at+jwt", "kid": keys.active.kid, **header}
    head = {name: value for name, value in head.items() if value is not None}
    return jwt.encode(head, claims, keys.active, algorithms=[head["alg"]])


def unsigned(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token."""
    head = {"alg": "none", "typ": "at+jwt"}
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}."


def with_stranger_key(
    claims: dict[str, Any], kid: str | None = None, *, jku: str | None = None, embed: bool = False
) -> str:
    """Signed by a key the server never issued, optionally claiming the server's kid.

    ``jku`` points the verifier at the attacker's key set; ``embed`` puts the attacker's
    public key in the header (``jwk``): a verifier must follow neither.
    """
    key = ECKey.generate_key("P-256", auto_kid=True)
    head: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": kid or key.kid}
    if jku is not None:
        head["jku"] = jku
    if embed:
        head["jwk"] = key.as_dict(private=False)
    return jwt.encode(head, claims, key, algorithms=["ES256"])


def hmac_with_public_key(keys: KeyRing, claims: dict[str, Any]) -> str:
    """The RS/ES→HS confusion attack: HS256 keyed with the server's public key."""
    public = json.dumps(keys.active.as_dict(private=False), sort_keys=True).encode()
    key = OctKey.import_key(public)
    head = {"alg": "HS256", "typ": "at+jwt", "kid": keys.active.kid}
    return jwt.encode(head, claims, key, algorithms=["HS256"])


def tamper(token: str) -> str:
    """Change one claim without re-signing."""
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = "users:read users:write tokens:exchange chat:read chat:write"
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"
