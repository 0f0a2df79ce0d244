"""Object-level access to a channel: membership, channel role, timed roles, bans, ACL.

The domain loads the channel, the caller's membership and the channel's ACL, then
hands plain data to :func:`bastion.security.acl.evaluate`: the levels the channel
role gives (``baseline``) and the ACL entries. The result says what the caller may do:

- no ``read``: the channel does not exist for them (404), unless they are a member
  (a banned member knows the channel: 403);
- otherwise each action needs its level (403 when missing).

Each refusal is a :class:`~bastion.chat.denials.Hidden` or
:class:`~bastion.chat.denials.Refused` naming the channel and why, so the service
method it leaves records the decision.

Bans and mutes are timed roles: ``banned`` or ``read-only`` until ``role_expires_at``,
then ``role_after`` again. They are resolved here, on read, so an expired ban needs no
background job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from bastion.chat.denials import Denial, Hidden, Refused
from bastion.chat.roles import ChannelType, Role
from bastion.security.acl import Effect as AclEffect
from bastion.security.acl import Entry, Level, Subject, evaluate
from bastion.security.acl import denied as denied_levels
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, MemberRecord
from bastion.store.repos import authz as acl_repo
from bastion.store.repos import channels as repo

BANNED = "banned"

_BASELINE: dict[str, tuple[Level, ...]] = {
    Role.OWNER: (Level.MANAGE,),
    Role.MODERATOR: (Level.MODERATE,),
    Role.MEMBER: (Level.WRITE,),
    Role.READ_ONLY: (Level.READ,),
    BANNED: (),
}


def baseline(channel_type: str, role: str | None) -> frozenset[Level]:
    """What a channel role gives before the ACL: broadcast members only read; in a direct
    channel both members write and nobody moderates."""
    if role is None:
        return frozenset()
    if channel_type == ChannelType.BROADCAST and role == Role.MEMBER:
        return frozenset({Level.READ})
    if channel_type == ChannelType.DIRECT and role != BANNED:
        return frozenset({Level.WRITE})
    return frozenset(_BASELINE.get(role, ()))


def effective(member: MemberRecord, now: datetime) -> MemberRecord:
    """The membership with an expired timed role (ban, mute) replaced by the role after it."""
    expires = member.role_expires_at
    if expires is None or expires > now:
        return member
    after = member.role_after or Role.MEMBER.value
    return dataclasses.replace(member, role=after, role_expires_at=None, role_after=None)


def resource(channel_id: str) -> str:
    """The ACL resource name of a channel."""
    return f"channel:{channel_id}"


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """The caller's standing in one channel."""

    channel: ChannelRecord
    member: MemberRecord | None
    levels: frozenset[Level]
    denied: frozenset[Level] = frozenset()
    """The levels an ACL deny takes from the caller (to say why one is missing)."""

    def may(self, level: Level) -> bool:
        """Whether the caller holds ``level`` on the channel."""
        return level in self.levels

    def require(self, level: Level, message: str) -> None:
        """Raise ``Refused`` unless the caller holds ``level``."""
        if level not in self.levels:
            raise self.refusal(level, message)

    def refusal(self, level: Level, message: str) -> Refused:
        """The 403 for lacking ``level``, with the reason: ACL deny, no membership,
        muted (read-only) or a channel role that gives too little."""
        if level in self.denied:
            reason = "acl_deny"
        elif self.member is None:
            reason = "not_member"
        elif self.member.role == Role.READ_ONLY:
            reason = "read_only"
        else:
            reason = "channel_role"
        return Refused(message, Denial(resource(self.channel.id), reason))

    def may_react(self) -> bool:
        """Reacting needs writing, except that a broadcast channel's audience may react."""
        if Level.WRITE in self.levels:
            return True
        return (
            self.channel.type == ChannelType.BROADCAST
            and self.member is not None
            and self.member.role == Role.MEMBER
        )

    def acting(self) -> MemberRecord:
        """The caller as a member whose role matches their levels (for rank rules)."""
        role = Role.READ_ONLY
        if Level.MANAGE in self.levels:
            role = Role.OWNER
        elif Level.MODERATE in self.levels:
            role = Role.MODERATOR
        elif Level.WRITE in self.levels:
            role = Role.MEMBER
        base = self.require_member()
        return dataclasses.replace(base, role=role.value)

    def require_member(self) -> MemberRecord:
        """The caller's membership; an ACL reader who is no member cannot do this."""
        if self.member is None:
            denial = Denial(resource(self.channel.id), "not_member")
            raise Refused("Only members of the channel can do this.", denial)
        return self.member


async def load_acl(conn: Connection, app_id: str, channel_id: str) -> list[Entry]:
    """A channel's ACL as the evaluator's plain entries."""
    rows = await acl_repo.get_acl(conn, app_id, resource(channel_id))
    return [Entry(subject, Level(level), AclEffect(effect)) for subject, level, effect in rows]


async def channel_access(
    conn: Connection, caller: Principal, user_id: str, channel_id: str, now: datetime
) -> ChannelAccess:
    """Load the channel with the caller's membership and ACL, and decide their levels.

    Raises ``Hidden`` (404) when the caller may not even know the channel, ``Refused``
    (403) when they are banned from it or an ACL denies a member reading.
    """
    found = await repo.get_membership(conn, caller.app_id, channel_id, user_id)
    entries = await load_acl(conn, caller.app_id, channel_id)
    if found is None:
        channel = await repo.get_channel(conn, caller.app_id, channel_id) if entries else None
        member = None
    else:
        channel, member = found[0], effective(found[1], now)
    if channel is None:
        raise await _hidden(conn, caller.app_id, channel_id)
    role = member.role if member else None
    if role == BANNED:
        raise Refused("You are banned from this channel.", Denial(resource(channel_id), BANNED))
    subject = Subject(user_id=user_id, roles=caller.roles)
    levels = evaluate(subject, baseline(channel.type, role), entries)
    if Level.READ not in levels:
        if member is None:
            raise Hidden("No such channel.", Denial(resource(channel_id), "not_member"))
        raise Refused("You may not read this channel.", Denial(resource(channel_id), "acl_deny"))
    return ChannelAccess(channel, member, levels, denied_levels(subject, entries))


async def _hidden(conn: Connection, app_id: str, channel_id: str) -> Hidden:
    """The 404 for a channel the caller cannot see: one of their app's they are not in,
    or none of their app's at all (missing, or another app's: the two look alike)."""
    exists = await repo.get_channel(conn, app_id, channel_id) is not None
    denial = Denial(resource(channel_id), "not_member" if exists else "not_found")
    return Hidden("No such channel.", denial)


async def readable_channel_ids(
    conn: Connection, caller: Principal, user_id: str, now: datetime
) -> list[str]:
    """The channels the caller belongs to and may read: not banned, no ACL deny of read.

    Every other channel role gives at least ``read`` and allows never take anything
    away, so a member reads unless a matching deny says otherwise.
    """
    ids = await repo.channel_ids_of_user(conn, caller.app_id, user_id, now)
    acls = await acl_repo.get_acls(conn, caller.app_id, [resource(i) for i in ids])
    subject = Subject(user_id=user_id, roles=caller.roles)
    return [
        channel_id
        for channel_id in ids
        if Level.READ
        in evaluate(
            subject,
            {Level.READ},
            [Entry(s, Level(lv), AclEffect(e)) for s, lv, e in acls.get(resource(channel_id), [])],
        )
    ]
