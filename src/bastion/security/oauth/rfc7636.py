"""RFC 7636: Proof Key for Code Exchange by OAuth Public Clients.

https://www.rfc-editor.org/rfc/rfc7636

Only ``S256`` is accepted (RFC 9700 §2.1.1): ``plain`` and a missing method (which
§4.3 defaults to ``plain``) are refused, and every authorization request must carry a
challenge, so a verifier can never be skipped or downgraded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

S256 = "S256"
METHODS = (S256,)
# §4.1: code_verifier = 43*128unreserved
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# §4.2: BASE64URL(SHA256(...)) of 32 bytes is 43 characters without padding.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    """§4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def challenge_error(challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's challenge is unacceptable, or None (§4.3, §4.4.1)."""
    if not challenge:
        return "code_challenge is required (PKCE with S256)."
    if method != S256:
        return "code_challenge_method must be S256."
    if not _CHALLENGE.match(challenge):
        return "code_challenge is not a S256 challenge."
    return None


def verify(verifier: str | None, challenge: str) -> bool:
    """§4.6: the verifier must be well formed and hash to the stored challenge."""
    if verifier is None or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
