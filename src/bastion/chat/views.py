"""The wire shape of every chat object, used by both REST responses and events."""

from __future__ import annotations

from typing import Any

from bastion.core.clock import rfc3339
from bastion.security.markup import render_markdown
from bastion.store.records import (
    ChannelRecord,
    MemberRecord,
    MessageRecord,
    UserRecord,
)


def _time(value: Any) -> str | None:
    return rfc3339(value) if value is not None else None


def user_view(user: UserRecord) -> dict[str, Any]:
    """A user as the API shows it."""
    return {
        "id": user.id,
        "external_id": user.external_id,
        "display_name": user.display_name,
        "active": user.active,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
        "version": user.version,
    }


def channel_view(channel: ChannelRecord) -> dict[str, Any]:
    """A channel as the API shows it."""
    return {
        "id": channel.id,
        "type": channel.type,
        "name": channel.name,
        "description": channel.description,
        "created_by": channel.created_by,
        "member_count": channel.member_count,
        "archived": channel.archived,
        "last_message_at": _time(channel.last_message_at),
        "created_at": rfc3339(channel.created_at),
        "updated_at": rfc3339(channel.updated_at),
        "version": channel.version,
    }


def member_view(member: MemberRecord) -> dict[str, Any]:
    """A membership as the API shows it."""
    return {
        "channel_id": member.channel_id,
        "user_id": member.user_id,
        "role": member.role,
        "role_expires_at": _time(member.role_expires_at),
        "joined_at": rfc3339(member.joined_at),
        "last_read_message_id": member.last_read_message_id,
        "last_read_at": _time(member.last_read_at),
        "version": member.version,
    }


def message_view(
    message: MessageRecord,
    reactions: dict[str, int] | None = None,
    own_reactions: set[str] | None = None,
) -> dict[str, Any]:
    """A message as the API shows it; a deleted message keeps its place but not its body
    or its reactions."""
    if message.deleted_at is not None:
        reactions, own_reactions = None, None
    return {
        "id": message.id,
        "channel_id": message.channel_id,
        "author_id": message.author_id,
        "parent_id": message.parent_id,
        "text": message.body,
        "html": render_markdown(message.body) if message.body is not None else None,
        "mentions": list(message.mentions),
        "client_msg_id": message.client_msg_id,
        "reply_count": message.reply_count,
        "reactions": dict(sorted((reactions or {}).items())),
        "own_reactions": sorted(own_reactions or ()),
        "created_at": rfc3339(message.created_at),
        "edited_at": _time(message.edited_at),
        "deleted_at": _time(message.deleted_at),
        "deleted": message.deleted_at is not None,
        "version": message.version,
    }
