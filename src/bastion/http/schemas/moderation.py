"""Schemas for bans, mutes and channel ACLs."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from bastion.http.schemas.common import RequestModel, ResponseModel
from bastion.security.acl import Effect, Level

AclSubject = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class Sanction(RequestModel):
    """A ban or mute, until ``expires_at`` (RFC 3339, in the future) or until lifted."""

    expires_at: AwareDatetime | None = None


class AclEntry(RequestModel):
    """Allow or deny one access level to a user (``user:<id>``), an app role
    (``role:<name>``) or everyone (``*``)."""

    subject: AclSubject
    level: Level
    effect: Effect


class AclUpdate(RequestModel):
    """The complete new ACL of a channel."""

    entries: list[AclEntry] = Field(max_length=100)


class AclEntryOut(ResponseModel):
    """One ACL entry."""

    subject: str
    level: Level
    effect: Effect


class AclOut(ResponseModel):
    """A channel's ACL."""

    channel_id: str
    entries: list[AclEntryOut]
