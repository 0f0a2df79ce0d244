"""Channel types, member roles and who may assign which role.

What each role may do in each type of channel (its access levels) is in
:mod:`bastion.chat.access`, where the channel's ACL is applied too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from bastion.chat.denials import Denial, Refused


class Roled(Protocol):
    """Anything that knows a member's role and channel (a membership)."""

    @property
    def role(self) -> str:
        """The member's role."""
        ...

    @property
    def channel_id(self) -> str:
        """The channel the role is held in."""
        ...


class ChannelType(StrEnum):
    """Kinds of channel."""

    DIRECT = "direct"
    GROUP = "group"
    BROADCAST = "broadcast"


class Role(StrEnum):
    """A member's role in a channel, strongest first."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"
    READ_ONLY = "read-only"


_RANK = {Role.OWNER: 3, Role.MODERATOR: 2, Role.MEMBER: 1, Role.READ_ONLY: 0}
_MANAGERS = frozenset({Role.OWNER, Role.MODERATOR})


def rank(role: str) -> int:
    """Order roles: a higher rank may manage a lower one."""
    return _RANK[Role(role)]


def require_manager(member: Roled) -> None:
    """Raise ``Refused`` unless the member is an owner or moderator."""
    if member.role not in _MANAGERS:
        denial = Denial(f"channel:{member.channel_id}", "channel_role")
        raise Refused("Only the channel's owners and moderators can do this.", denial)


def require_may_assign(actor: Roled, role: str, current: str | None = None) -> None:
    """Owners assign any role; moderators only roles below their own, to members below them."""
    if actor.role == Role.OWNER:
        return
    require_manager(actor)
    if rank(role) >= rank(actor.role) or (
        current is not None and rank(current) >= rank(actor.role)
    ):
        denial = Denial(f"channel:{actor.channel_id}", "rank")
        raise Refused("Moderators can only manage members and read-only members.", denial)
