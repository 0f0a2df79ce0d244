"""Plain, immutable records the repositories return; the domain works with these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class DuplicateKeyError(Exception):
    """An insert hit a unique constraint (another request created the same thing)."""


@dataclass(frozen=True, slots=True)
class AppRecord:
    """A tenant: one customer application."""

    id: str
    name: str
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the app is enabled (its clients may get tokens, its tokens work)."""
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """An OAuth client that belongs to an app."""

    id: str
    app_id: str
    name: str
    secret_hash: str
    scopes: frozenset[str]
    created_at: datetime
    disabled: bool
    app_disabled: bool = False

    @property
    def usable(self) -> bool:
        """Whether the client may authenticate: neither it nor its app is disabled."""
        return not self.disabled and not self.app_disabled


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An end user of an app."""

    id: str
    app_id: str
    external_id: str
    display_name: str
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A conversation: direct, group or broadcast."""

    id: str
    app_id: str
    type: str
    name: str | None
    description: str | None
    created_by: str
    member_count: int
    last_message_id: str | None
    last_message_at: datetime | None
    activity_at: datetime
    archived: bool
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A user's membership of a channel, with their role and read position."""

    channel_id: str
    user_id: str
    app_id: str
    role: str
    joined_at: datetime
    last_read_seq: int
    last_read_message_id: str | None
    last_read_at: datetime | None
    role_expires_at: datetime | None = None
    role_after: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message; ``body`` is None once deleted."""

    seq: int
    id: str
    app_id: str
    channel_id: str
    author_id: str
    parent_id: str | None
    body: str | None
    mentions: tuple[str, ...]
    client_msg_id: str | None
    reply_count: int
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    version: int


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """How an OAuth client authenticates and where its users may be sent back to."""

    client_id: str
    app_id: str
    client_type: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    jwks: str | None
    first_party: bool
    require_mfa: bool
    previous_secret_hash: str | None
    previous_secret_expires_at: datetime | None
    tls_client_auth: tuple[str, str] | None = None
    """RFC 8705 §2.1.2: the certificate name a tls_client_auth client must present, as
    (metadata field, normalised value)."""


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A user's login: username, password hash and TOTP enrolment."""

    user_id: str
    app_id: str
    username: str
    password_hash: str
    has_totp_secret: bool
    totp_enabled: bool
    totp_last_step: int
    mfa_required: bool = False


@dataclass(frozen=True, slots=True)
class MfaPolicyRecord:
    """An app's own MFA policy: everyone, or the holders of some app roles."""

    app_id: str
    everyone: bool
    roles: frozenset[str]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Failed-login counters of one account or one client address."""

    app_id: str
    subject: str
    num_failures: int
    last_failure: datetime
    last_ip: str | None
    locked_until: datetime | None
    temporary_lockouts: int
    permanently_locked: bool


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """An authorization request waiting for the user to log in (and consent)."""

    id: str
    app_id: str
    client_id: str
    request: str
    browser_hash: str
    csrf: str
    stage: str
    user_id: str | None
    amr: str
    auth_time: datetime | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A browser's login session at the authorization server."""

    app_id: str
    user_id: str
    amr: str
    auth_time: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A refresh-token family: what one login granted one client."""

    id: str
    app_id: str
    client_id: str
    user_id: str
    scope: str
    auth_time: datetime
    amr: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code (stored by hash)."""

    grant_id: str
    app_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A refresh token (stored by hash) of a grant."""

    grant_id: str
    app_id: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None
