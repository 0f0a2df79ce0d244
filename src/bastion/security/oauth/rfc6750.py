"""RFC 6750: The OAuth 2.0 Authorization Framework: Bearer Token Usage.

https://www.rfc-editor.org/rfc/rfc6750

Only the Authorization request header field (§2.1) is accepted: tokens in a query
string end up in logs (§2.3, §5.3), so they are refused. A request carrying more than
one credential is refused too (§2: a client MUST NOT use more than one method).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bastion.core.errors import InvalidRequest, Unauthenticated

# §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_CREDENTIALS = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*)$", re.IGNORECASE)


class InvalidBearerRequest(InvalidRequest):
    """§3.1 ``invalid_request``: the token was sent in a way this server refuses (400)."""

    error = "invalid_request"


def authorization_header(values: Sequence[str]) -> str | None:
    """The request's one ``Authorization`` header value, or None without one.

    Two headers are two credentials (alice's and bob's, say): reading either one would
    let the other pass unseen, so the request is refused as a whole (§2, §3.1).
    """
    if len(values) > 1:
        raise InvalidBearerRequest("Send exactly one Authorization header.")
    return values[0] if values else None


def bearer_token(authorization: str | None) -> str:
    """Extract the token from an ``Authorization: Bearer`` header value."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated("An access token is required.", token_present=False)
    value = authorization.strip()
    if value.split(" ", 1)[0].lower() != "bearer":
        # §3.1: an unsupported authentication method is answered like no credentials,
        # with a bare challenge and no error code.
        raise Unauthenticated("Authenticate with a Bearer access token.", token_present=False)
    match = _CREDENTIALS.match(value)
    if match is None:
        raise Unauthenticated("The Authorization header is not a Bearer token.")
    return match.group(1)


def refuse_query_token(query_keys: set[str]) -> None:
    """§2.3 is not supported: a token in the URL is a request error (§3.1 invalid_request)."""
    if "access_token" in query_keys:
        raise InvalidBearerRequest(
            "Send the access token in the Authorization header, not the URL."
        )


def challenge(
    realm: str, error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """Build the ``WWW-Authenticate`` value for a 401 or 403 (§3)."""
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)
