"""RFC 6749: The OAuth 2.0 Authorization Framework — token endpoint core.

https://www.rfc-editor.org/rfc/rfc6749

Client authentication with HTTP Basic (§2.3.1), the ``client_credentials`` grant
(§4.4), the token response (§5.1) and error response (§5.2).
"""

from __future__ import annotations

import base64
import binascii
from typing import Protocol
from urllib.parse import unquote

from bastion.core.errors import OAuthError
from bastion.security.passwords import SecretHasher
from bastion.store.records import ClientRecord

CLIENT_CREDENTIALS = "client_credentials"
_MAX_CREDENTIAL_LENGTH = 512


class ClientStore(Protocol):
    """Where OAuth clients are looked up (implemented over ``bastion.store``)."""

    async def get_client(self, client_id: str) -> ClientRecord | None:
        """Return the client with this id, or None."""
        ...


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    """§5.2 ``invalid_client``: 401 with a Basic challenge, since Basic was the method."""
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
    stored_hash = client.secret_hash if client and not client.disabled else None
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
