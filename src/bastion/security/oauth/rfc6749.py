"""RFC 6749: The OAuth 2.0 Authorization Framework — token endpoint core.

https://www.rfc-editor.org/rfc/rfc6749

Client authentication with HTTP Basic (§2.3.1), the ``client_credentials`` grant
(§4.4), the token response (§5.1) and error response (§5.2), which the revocation
(RFC 7009 §2.2.1) and introspection (RFC 7662 §2.3) endpoints share.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import unquote

from bastion.core.errors import OAuthError
from bastion.security.passwords import SecretHasher
from bastion.store.records import ClientRecord

CLIENT_CREDENTIALS = "client_credentials"
_MAX_CREDENTIAL_LENGTH = 512

ENDPOINTS = frozenset({"/oauth/token", "/oauth/revoke", "/oauth/introspect"})
"""The endpoints whose every refused request is answered with a §5.2 JSON body."""
# Refusals of the request itself (framing, method, media type, size, parameters): §5.2
# calls them invalid_request. 401, 403, 429 and 5xx are not about the request's shape
# and keep their own answers (Retry-After on 429 and 503).
_REQUEST_REFUSALS = frozenset({400, 405, 408, 413, 414, 415, 422, 431})
_OAUTH_STATUS = {422: 400}  # 422 is no OAuth status: a bad parameter is a plain 400


class ClientStore(Protocol):
    """Where OAuth clients are looked up (implemented over ``bastion.store``)."""

    async def get_client(self, client_id: str) -> ClientRecord | None:
        """Return the client with this id, or None."""
        ...


def request_refusal(path: str, status: int, description: str) -> OAuthError | None:
    """The §5.2 ``invalid_request`` that stands for a refusal on an OAuth endpoint.

    The guards and the router refuse a wrong method (405), media type (415) or size
    (413) before the endpoint runs; on these endpoints the client still gets the OAuth
    body it parses, with the status that says what was wrong. None elsewhere, and for
    statuses that are not about the request's shape.
    """
    if path not in ENDPOINTS or status not in _REQUEST_REFUSALS:
        return None
    return OAuthError("invalid_request", description, status=_OAUTH_STATUS.get(status, status))


def authorization_header(values: Sequence[str]) -> str | None:
    """The one ``Authorization`` header of a request, or None without one.

    §5.2 ``invalid_request``: a request that "includes multiple credentials" is refused,
    so no second set of credentials rides along beside the one that is checked.
    """
    if len(values) > 1:
        raise OAuthError("invalid_request", "Send exactly one Authorization header.")
    return values[0] if values else None


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    """§5.2 ``invalid_client``: 401 with a Basic challenge.

    The challenge is required when the client tried Basic, and otherwise names the
    HTTP authentication scheme this server supports (which §5.2 allows with a 401).
    """
    return OAuthError(
        "invalid_client",
        description,
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="bastion", charset="UTF-8"'},
    )


def parse_basic(authorization: str | None) -> tuple[str, str]:
    """Decode ``client_id:client_secret`` from HTTP Basic credentials (§2.3.1)."""
    if not authorization or not authorization[:6].lower() == "basic ":
        raise invalid_client("Authenticate the client with HTTP Basic (client_secret_basic).")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client() from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or len(decoded) > _MAX_CREDENTIAL_LENGTH:
        raise invalid_client()
    # §2.3.1: both parts are form-urlencoded before being joined.
    return unquote(client_id), unquote(secret)


async def authenticate_client(
    store: ClientStore, hasher: SecretHasher, authorization: str | None
) -> ClientRecord:
    """Return the authenticated client, or raise ``invalid_client``."""
    client_id, secret = parse_basic(authorization)
    client = await store.get_client(client_id)
    stored_hash = client.secret_hash if client and client.usable else None
    if not await hasher.verify(stored_hash, secret) or client is None:
        raise invalid_client()
    return client


def granted_scopes(requested: frozenset[str], allowed: frozenset[str]) -> frozenset[str]:
    """§3.3: grant what was asked within what is allowed; no scope asked means all allowed."""
    if not requested:
        return allowed
    if not requested <= allowed:
        raise OAuthError("invalid_scope", "The requested scope exceeds what the client may use.")
    return requested
