"""Making RFC 9449 DPoP proofs the way a client (or an attacker replaying one) would."""

from __future__ import annotations

import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, thumbprint

from bastion.security.oauth.rfc9449 import ath


class DPoPKey:
    """A client's DPoP key pair and the proofs it signs."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", private=True)
        self.public = self.key.as_dict(private=False)
        self.jkt = thumbprint(self.public)

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        nonce: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A fresh proof for ``method`` and ``url`` (and the token, for resource requests)."""
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public, **(header or {})}
        return jwt.encode(head, body, self.key, algorithms=[head["alg"]])
