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

Live connections receive the channels their user may read. Every channel role but
``banned`` gives ``read`` and an allow never takes anything away, so whether a member
reads depends only on the entries that deny ``read``: :func:`read_changes` and
:func:`role_read_changes` find whose reading an ACL or an app-role change turns on or
off, for the events that move live subscriptions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bastion.chat.denials import Denial, Hidden, Refused
from bastion.chat.roles import ChannelType, Role
from bastion.security.acl import ROLE_PREFIX, Entry, Level, Subject, evaluate
from bastion.security.acl import Effect as AclEffect
from bastion.security.acl import denied as denied_levels
from bastion.security.policy import AppRole
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, MemberRecord
from bastion.store.repos import authz as acl_repo
from bastion.store.repos import channels as repo

BANNED = "banned"
DEFAULT_APP_ROLES = frozenset({AppRole.MEMBER.value})
"""The app roles of a user who was never assigned any."""

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
    return _entries(await acl_repo.get_acl(conn, app_id, resource(channel_id)))


def _entries(rows: list[acl_repo.AclRow]) -> list[Entry]:
    return [Entry(subject, Level(level), AclEffect(effect)) for subject, level, effect in rows]


async def channel_access(
    conn: Connection, caller: Principal, user_id: str, channel_id: str, now: datetime
) -> ChannelAccess:
    """Load the channel with the caller's membership and ACL, and decide their levels.

    Raises ``Hidden`` (404) when the caller may not even know the channel, ``Refused``
    (403) when they are banned from it or an ACL denies a member reading.
    """
    standing = await repo.get_standing(
        conn, caller.app_id, channel_id, user_id, resource(channel_id)
    )
    if standing is None:
        # None of their app's: missing, or another app's (the two look alike).
        raise Hidden("No such channel.", Denial(resource(channel_id), "not_found"))
    channel = standing.channel
    member = effective(standing.member, now) if standing.member is not None else None
    entries = _entries(standing.acl)
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


async def readable_channel_ids(
    conn: Connection, caller: Principal, user_id: str, now: datetime
) -> list[str]:
    """The channels the caller belongs to and may read: not banned, no ACL deny of read."""
    ids = await repo.channel_ids_of_user(conn, caller.app_id, user_id, now)
    acls = await _acls(conn, caller.app_id, ids)
    subject = Subject(user_id=user_id, roles=caller.roles)
    return [channel_id for channel_id in ids if reads(subject, acls.get(channel_id, []))]


def reads(subject: Subject, entries: Iterable[Entry]) -> bool:
    """Whether a member who is not banned may read under ``entries``."""
    return Level.READ in evaluate(subject, (Level.READ,), entries)


def read_denials(entries: Iterable[Entry]) -> frozenset[Entry]:
    """The entries that deny reading: the only ones that can stop a member reading."""
    return frozenset(e for e in entries if e.effect is AclEffect.DENY and e.level is Level.READ)


async def member_reads(conn: Connection, app_id: str, channel_id: str, user_id: str) -> bool:
    """Whether a member who is not banned may read the channel now (joining them live)."""
    entries = await load_acl(conn, app_id, channel_id)
    denials = read_denials(entries)
    if not denials:
        return True
    roles = DEFAULT_APP_ROLES
    if any(e.subject.startswith(ROLE_PREFIX) for e in denials):
        roles = await acl_repo.get_user_roles(conn, app_id, user_id) or DEFAULT_APP_ROLES
    return reads(Subject(user_id=user_id, roles=roles), denials)


async def read_changes(
    conn: Connection,
    app_id: str,
    channel_id: str,
    before: list[Entry],
    after: list[Entry],
    now: datetime,
) -> tuple[list[str], list[str]]:
    """The members a change of the channel's ACL lets read (first) and stops (second)."""
    old, new = read_denials(before), read_denials(after)
    if old == new:
        return [], []
    gained: list[str] = []
    lost: list[str] = []
    for user_id, roles in await repo.readers_with_roles(conn, app_id, channel_id, now):
        subject = Subject(user_id=user_id, roles=roles or DEFAULT_APP_ROLES)
        was, is_now = reads(subject, old), reads(subject, new)
        if is_now and not was:
            gained.append(user_id)
        elif was and not is_now:
            lost.append(user_id)
    return gained, lost


async def role_read_changes(
    conn: Connection,
    app_id: str,
    user_id: str,
    before: frozenset[str],
    after: frozenset[str],
    now: datetime,
) -> tuple[list[str], list[str]]:
    """The channels a change of the user's app roles lets them read (first) and stops
    them reading (second), among those they belong to."""
    if before == after:
        return [], []
    ids = await repo.channel_ids_of_user(conn, app_id, user_id, now)
    acls = await _acls(conn, app_id, ids)
    old, new = Subject(user_id, before), Subject(user_id, after)
    gained: list[str] = []
    lost: list[str] = []
    for channel_id, entries in acls.items():
        denials = read_denials(entries)
        was, is_now = reads(old, denials), reads(new, denials)
        if is_now and not was:
            gained.append(channel_id)
        elif was and not is_now:
            lost.append(channel_id)
    return gained, lost


async def _acls(conn: Connection, app_id: str, channel_ids: list[str]) -> dict[str, list[Entry]]:
    """The ACLs of these channels, by channel id (only channels that have one)."""
    found = await acl_repo.get_acls(conn, app_id, [resource(i) for i in channel_ids])
    prefix = len(resource(""))
    return {
        name[prefix:]: [Entry(s, Level(lv), AclEffect(e)) for s, lv, e in rows]
        for name, rows in found.items()
    }
