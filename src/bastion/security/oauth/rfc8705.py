"""RFC 8705: OAuth 2.0 Mutual-TLS Client Authentication and Certificate-Bound Access Tokens.

https://www.rfc-editor.org/rfc/rfc8705

A client registered for ``tls_client_auth`` (§2.1) authenticates at the token endpoint
with the certificate of its TLS connection. The certificate must chain to the
configured client CA (checked during the handshake, or by the trusted proxy that
terminated it) and carry the one name the client registered: its subject
distinguished name or one subject alternative name (§2.1.2). Access tokens issued to
such a client are bound to that certificate (§3): their ``cnf`` claim holds
``x5t#S256``, the SHA-256 of the DER certificate, and the resource server accepts them
only over a connection presenting the same certificate (§3.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.core.errors import Unauthenticated
from bastion.security.crypto import aead

TLS_CLIENT_AUTH = "tls_client_auth"
SUBJECT_DN = "tls_client_auth_subject_dn"
SAN_DNS = "tls_client_auth_san_dns"
SAN_URI = "tls_client_auth_san_uri"
SAN_IP = "tls_client_auth_san_ip"
SAN_EMAIL = "tls_client_auth_san_email"
NAME_FIELDS = (SUBJECT_DN, SAN_DNS, SAN_URI, SAN_IP, SAN_EMAIL)
"""§2.1.2: the client metadata naming the certificate's expected subject; one is used."""
THUMBPRINT = "x5t#S256"
_MAX_NAME = 1000


@dataclass(frozen=True, slots=True)
class ExpectedName:
    """The one name a client's certificate must carry (§2.1.2), in normalised form."""

    field: str
    value: str

    def presented_by(self, der: bytes) -> bool:
        """Whether the DER certificate carries this name."""
        try:
            names = aead.certificate_names(der)
        except ValueError:
            return False
        found: dict[str, tuple[str, ...]] = {
            SUBJECT_DN: (names.subject_dn,),
            SAN_DNS: tuple(name.lower() for name in names.dns),
            SAN_URI: names.uris,
            SAN_IP: names.ips,
            SAN_EMAIL: names.emails,
        }
        return self.value in found[self.field]


def expected_name(field: str, value: str) -> ExpectedName:
    """The registered name, normalised as certificates are read; ``ValueError`` if bad."""
    if field not in NAME_FIELDS:
        raise ValueError(f"use one of {', '.join(NAME_FIELDS)}")
    value = value.strip()
    if not value or len(value) > _MAX_NAME:
        raise ValueError(f"{field} must be 1 to {_MAX_NAME} characters")
    if field == SUBJECT_DN:
        return ExpectedName(field, aead.distinguished_name(value))
    if field == SAN_IP:
        return ExpectedName(field, str(ipaddress.ip_address(value)))
    if field == SAN_DNS:
        # DNS names compare without regard to case (RFC 4343).
        return ExpectedName(field, value.lower())
    return ExpectedName(field, value)


def thumbprint(der: bytes) -> str:
    """§3.1: base64url(SHA-256(DER certificate)), without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode("ascii").rstrip("=")


def certificate_of(scope: Mapping[str, Any]) -> bytes | None:
    """The DER client certificate of a request, from the ASGI TLS extension, or None.

    The extension is filled by the server's own TLS handshake or, behind a trusted
    proxy, from the header that proxy forwards (``bastion.security.guard.client_cert``).
    """
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, Mapping) else None
    first = next(iter(chain), None) if chain else None
    if not isinstance(first, str):
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(first)
    except ValueError:
        return None


def check_binding(x5t: str | None, certificate: bytes | None) -> None:
    """§3.1: a certificate-bound token is accepted only with the certificate it names."""
    if x5t is None:
        return
    if certificate is None or not hmac.compare_digest(thumbprint(certificate), x5t):
        raise Unauthenticated(
            "This access token is bound to a client certificate this connection did not present."
        )
