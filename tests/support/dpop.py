"""Making RFC 9449 DPoP proofs the way a client (or an attacker replaying one) would."""

from __future__ import annotations

import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey, thumbprint

from bastion.security.oauth.rfc9449 import ath

_KEYS: dict[str, Any] = {
    "ES256": lambda: ECKey.generate_key("P-256", private=True),
    "ES384": lambda: ECKey.generate_key("P-384", private=True),
    "ES512": lambda: ECKey.generate_key("P-521", private=True),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519", private=True),
}


class DPoPKey:
    """A client's DPoP key pair and the proofs it signs (ES256 unless ``alg`` says)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        make = _KEYS.get(alg, lambda: RSAKey.generate_key(2048, private=True))
        self.key = make()
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
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public, **(header or {})}
        return jwt.encode(head, body, self.key, algorithms=[head["alg"]])
