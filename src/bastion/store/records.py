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


@dataclass(frozen=True, slots=True)
class Access:
    """A user's standing in one channel: the least a permission check needs."""

    type: str
    archived: bool
    role: str


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
