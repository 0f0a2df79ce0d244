"""Channel and member schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints

from bastion.chat.roles import ChannelType, Role
from bastion.http.schemas.common import (
    CleanName,
    CleanText,
    NotNull,
    RequestModel,
    ResponseModel,
    UserId,
)
from bastion.http.schemas.messages import MessageOut

ChannelName = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True), CleanName
]
Description = Annotated[str, StringConstraints(max_length=1000), CleanText]


class ChannelCreate(RequestModel):
    """Open a direct channel with one user, or create a group or broadcast channel."""

    type: ChannelType
    name: ChannelName | None = None
    description: Description | None = None
    members: list[UserId] = Field(default_factory=list, max_length=1000)


class ChannelUpdate(RequestModel):
    """JSON Merge Patch of a channel: rename, describe, archive or unarchive."""

    name: ChannelName | None = None
    description: Description | None = None
    archived: Annotated[StrictBool | None, NotNull] = None


class MemberOut(ResponseModel):
    """A channel membership."""

    channel_id: str
    user_id: str
    role: Role | Literal["banned"]
    role_expires_at: str | None = Field(
        None, description="When a ban or mute ends (the role then returns to what it was)."
    )
    joined_at: str
    last_read_message_id: str | None
    last_read_at: str | None
    version: int = Field(
        description="Changes with the role (role changes, bans, mutes), not the read position."
    )


class ChannelOut(ResponseModel):
    """A channel as the calling member sees it."""

    id: str
    type: ChannelType
    name: str | None
    description: str | None
    created_by: str
    member_count: int
    archived: bool
    last_message_at: str | None
    created_at: str
    updated_at: str
    version: int
    membership: MemberOut | None = Field(
        description="The caller's membership; null for a reader with an ACL grant only."
    )
    unread_count: int
    last_message: MessageOut | None


class ChannelPage(ResponseModel):
    """A page of the caller's channels, most recently active first; ``prev_cursor`` goes
    back up the list (``before``), ``next_cursor`` on down (``after``)."""

    data: list[ChannelOut]
    prev_cursor: str | None
    next_cursor: str | None


class MemberAdd(RequestModel):
    """Add a user to a channel."""

    user_id: UserId
    role: Role = Role.MEMBER


class MemberUpdate(RequestModel):
    """Change a member's role."""

    role: Role


class MemberPage(ResponseModel):
    """A page of members by user id; ``prev_cursor`` goes back (``before``), ``next_cursor``
    on (``after``)."""

    data: list[MemberOut]
    prev_cursor: str | None
    next_cursor: str | None


class ReadUpdate(RequestModel):
    """Mark everything up to and including a message as read."""

    message_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class ReadOut(ResponseModel):
    """The caller's read position in a channel."""

    channel_id: str
    last_read_message_id: str | None
    last_read_at: str | None
    unread_count: int
