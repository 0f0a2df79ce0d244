"""OAuth client schemas (the admin API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints

from bastion.http.schemas.common import RequestModel, ResponseModel

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
RedirectUri = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
CertificateName = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
GrantType = Literal[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
]


_USER_GRANTS: tuple[GrantType, ...] = ("authorization_code", "refresh_token")


class ClientCreate(RequestModel):
    """Register a client. Public clients (SPAs, mobile apps) use ``auth_method: none``."""

    name: Name
    client_type: Literal["confidential", "public"] = "confidential"
    auth_method: (
        Literal["client_secret_basic", "private_key_jwt", "tls_client_auth", "none"] | None
    ) = Field(
        None,
        description="Default: client_secret_basic, or none for public clients. "
        "tls_client_auth (RFC 8705) needs mutual TLS and one tls_client_auth_* name.",
    )
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=20)
    grant_types: list[GrantType] = Field(default_factory=lambda: list(_USER_GRANTS), min_length=1)
    scopes: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        None, max_length=20, description="Default: chat:read chat:write."
    )
    jwks: dict[str, Any] | None = Field(None, description="Public keys, for private_key_jwt.")
    first_party: StrictBool = Field(False, description="Skip the consent screen.")
    require_mfa: StrictBool = Field(False, description="Users of this client must use TOTP.")
    tls_client_auth_subject_dn: CertificateName | None = Field(
        None, description="tls_client_auth: the certificate's subject DN (RFC 4514)."
    )
    tls_client_auth_san_dns: CertificateName | None = Field(
        None, description="tls_client_auth: a dNSName the certificate's SAN must hold."
    )
    tls_client_auth_san_uri: CertificateName | None = Field(
        None, description="tls_client_auth: a URI the certificate's SAN must hold."
    )
    tls_client_auth_san_ip: CertificateName | None = Field(
        None, description="tls_client_auth: an IP address the certificate's SAN must hold."
    )
    tls_client_auth_san_email: CertificateName | None = Field(
        None, description="tls_client_auth: an e-mail address the certificate's SAN must hold."
    )


class ClientUpdate(RequestModel):
    """JSON Merge Patch of a client (RFC 7396)."""

    name: Name | None = None
    redirect_uris: list[RedirectUri] | None = Field(None, max_length=20)
    jwks: dict[str, Any] | None = None
    first_party: StrictBool | None = None
    require_mfa: StrictBool | None = None
    disabled: StrictBool | None = None


class SecretRotation(RequestModel):
    """Rotate a client secret; the old one keeps working for ``overlap_seconds``."""

    overlap_seconds: int = Field(0, ge=0, le=30 * 86_400)


class ClientOut(ResponseModel):
    """A client; ``client_secret`` appears only in the answer that created it."""

    id: str
    app_id: str
    name: str
    client_type: str
    auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    first_party: bool
    require_mfa: bool
    disabled: bool
    created_at: str
    jwks: dict[str, Any] | None = None
    tls_client_auth_subject_dn: str | None = None
    tls_client_auth_san_dns: str | None = None
    tls_client_auth_san_uri: str | None = None
    tls_client_auth_san_ip: str | None = None
    tls_client_auth_san_email: str | None = None
    client_secret: str | None = None


class ClientPage(ResponseModel):
    """The app's clients."""

    data: list[ClientOut]
    next_cursor: str | None


class SecretOut(ResponseModel):
    """A new client secret, shown this once."""

    client_id: str
    client_secret: str
    previous_secret_expires_at: str | None


class MfaRequirement(RequestModel):
    """Whether one user must use TOTP at every login."""

    required: StrictBool


class LoginSet(RequestModel):
    """Give a user a username and password for the login pages."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
