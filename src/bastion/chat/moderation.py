"""Moderation: bans and mutes (timed channel roles) and channel ACLs.

Channel owners and moderators moderate the members they outrank; app roles holding
``channel:moderate:any`` (moderators, admins) moderate any channel of the app, and
``acl:manage:any`` (admins) manage any channel's ACL. Every change is recorded as an
``admin.change`` security event inside the transaction that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.chat import roles
from bastion.chat.access import (
    BANNED,
    ChannelAccess,
    effective,
    load_acl,
    member_reads,
    read_changes,
    resource,
)
from bastion.chat.channels import acting_user, load_access
from bastion.chat.context import ChatContext, Outbox, record_change
from bastion.chat.denials import reports
from bastion.chat.live import announce_access
from bastion.chat.roles import ChannelType, Role
from bastion.chat.views import member_view
from bastion.core.errors import (
    BastionError,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from bastion.observe.events import Detail, Origin
from bastion.security import scopes
from bastion.security.acl import Entry, Level, valid_subject
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, MemberRecord
from bastion.store.repos import authz as acl_repo
from bastion.store.repos import channels as repo

ACL_MAX_ENTRIES = 100


@dataclass(frozen=True, slots=True)
class Authority:
    """Who moderates here: through the channel (with a rank) or app-wide."""

    channel: ChannelRecord
    actor: MemberRecord | None
    """The caller's acting membership; None when acting through an app-wide role."""


def _render(entries: list[Entry]) -> str:
    return " ".join(sorted(f"{e.subject}={e.effect.value}:{e.level.value}" for e in entries))


class Moderation:
    """Bans, mutes and channel ACLs."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def _authority(
        self, conn: Connection, caller: Principal, channel_id: str, level: Level, anywhere: str
    ) -> Authority:
        """The caller's right to act at ``level`` in the channel, or app-wide by ``anywhere``."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        refusal: BastionError
        try:
            access: ChannelAccess | None = await load_access(
                self._ctx, conn, caller, user_id, channel_id
            )
        except (NotFound, Forbidden) as exc:
            access, refusal = None, exc
        if access is not None and access.may(level):
            return Authority(access.channel, access.acting() if access.member else None)
        if await self._ctx.authz.holds(caller, anywhere):
            channel = await repo.get_channel(conn, caller.app_id, channel_id)
            if channel is not None:
                return Authority(channel, None)
        if access is None:
            raise refusal
        raise access.refusal(level, "Only the channel's owners and moderators can do this.")

    async def _target(
        self, conn: Connection, app_id: str, authority: Authority, user_id: str
    ) -> MemberRecord:
        if authority.channel.type == ChannelType.DIRECT:
            raise Conflict("Direct channels have no moderation; members can leave the app.")
        found = await repo.get_member(conn, app_id, authority.channel.id, user_id)
        if found is None:
            raise NotFound("No such member.")
        target = effective(found, self._ctx.clock.now())
        if authority.actor is not None:
            rank_of = target.role_after if target.role == BANNED else target.role
            roles.require_may_assign(authority.actor, rank_of or Role.MEMBER, rank_of)
        return target

    @reports("member:ban")
    async def ban(
        self,
        caller: Principal,
        channel_id: str,
        user_id: str,
        expires_at: datetime | None,
        origin: Origin,
    ) -> MemberRecord:
        """Ban a member (until ``expires_at``, or until unbanned): they can no longer read,
        post or see the members, and stop receiving the channel's events."""
        self._check_future(expires_at)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            await repo.lock_channel(conn, caller.app_id, channel_id)
            authority = await self._authority(
                conn, caller, channel_id, Level.MODERATE, "channel:moderate:any"
            )
            target = await self._target(conn, caller.app_id, authority, user_id)
            if target.role == Role.OWNER and await self._last_owner(conn, caller, channel_id):
                raise Conflict("A channel needs an owner: make someone else owner first.")
            before = target.role_after if target.role == BANNED else target.role
            changes = {"role": BANNED, "role_expires_at": expires_at, "role_after": before}
            member = await self._apply(conn, caller, target, changes)
            await self._changed(caller, origin, member, "member.ban", target.role, expires_at)
        outbox.add(
            caller.app_id,
            "member.updated",
            member_view(member),
            channel_id=channel_id,
            user_ids=(user_id,),
            leaves=((user_id, channel_id),),
        )
        await outbox.publish(self._ctx.broker)
        return member

    @reports("member:ban")
    async def unban(
        self, caller: Principal, channel_id: str, user_id: str, origin: Origin
    ) -> MemberRecord:
        """Lift a ban: the member gets back the role they had."""
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            await repo.lock_channel(conn, caller.app_id, channel_id)
            authority = await self._authority(
                conn, caller, channel_id, Level.MODERATE, "channel:moderate:any"
            )
            target = await self._target(conn, caller.app_id, authority, user_id)
            if target.role != BANNED:
                raise Conflict("The member is not banned.")
            restored = target.role_after or Role.MEMBER.value
            changes = {"role": restored, "role_expires_at": None, "role_after": None}
            member = await self._apply(conn, caller, target, changes)
            await self._changed(caller, origin, member, "member.unban", BANNED, None)
            reads = await member_reads(conn, caller.app_id, channel_id, user_id)
        outbox.add(
            caller.app_id,
            "member.updated",
            member_view(member),
            channel_id=channel_id,
            user_ids=(user_id,),
            joins=((user_id, channel_id),) if reads else (),
        )
        await outbox.publish(self._ctx.broker)
        return member

    @reports("member:mute")
    async def mute(
        self,
        caller: Principal,
        channel_id: str,
        user_id: str,
        expires_at: datetime | None,
        origin: Origin,
    ) -> MemberRecord:
        """Mute a member (read-only until ``expires_at``, or until unmuted)."""
        self._check_future(expires_at)
        async with self._ctx.db.write() as conn:
            authority = await self._authority(
                conn, caller, channel_id, Level.MODERATE, "channel:moderate:any"
            )
            target = await self._target(conn, caller.app_id, authority, user_id)
            if target.role == BANNED:
                raise Conflict("The member is banned.")
            if target.role == Role.OWNER:
                raise Conflict("Owners cannot be muted; change their role first.")
            muted = target.role == Role.READ_ONLY and target.role_after is not None
            before = target.role_after if muted else target.role
            changes = {"role": Role.READ_ONLY.value, "role_expires_at": expires_at}
            member = await self._apply(conn, caller, target, {**changes, "role_after": before})
            await self._changed(caller, origin, member, "member.mute", target.role, expires_at)
        await self._publish_update(caller, member)
        return member

    @reports("member:mute")
    async def unmute(
        self, caller: Principal, channel_id: str, user_id: str, origin: Origin
    ) -> MemberRecord:
        """Lift a mute: the member gets back the role they had."""
        async with self._ctx.db.write() as conn:
            authority = await self._authority(
                conn, caller, channel_id, Level.MODERATE, "channel:moderate:any"
            )
            target = await self._target(conn, caller.app_id, authority, user_id)
            if target.role != Role.READ_ONLY or target.role_after is None:
                raise Conflict("The member is not muted.")
            changes = {"role": target.role_after, "role_expires_at": None, "role_after": None}
            member = await self._apply(conn, caller, target, changes)
            await self._changed(caller, origin, member, "member.unmute", target.role, None)
        await self._publish_update(caller, member)
        return member

    @reports("acl:manage")
    async def acl(self, caller: Principal, channel_id: str) -> list[Entry]:
        """A channel's ACL (its managers, or admins of the app)."""
        async with self._ctx.db.read() as conn:
            await self._authority(conn, caller, channel_id, Level.MANAGE, "acl:manage:any")
            return await load_acl(conn, caller.app_id, channel_id)

    @reports("acl:manage")
    async def set_acl(
        self, caller: Principal, channel_id: str, entries: list[Entry], origin: Origin
    ) -> list[Entry]:
        """Replace a channel's ACL; members it lets read or stops reading are told, and
        their live subscriptions move with it."""
        if len(entries) > ACL_MAX_ENTRIES:
            raise ValidationFailed([FieldError("body.entries", "At most 100 entries.")])
        bad = [e.subject for e in entries if not valid_subject(e.subject)]
        if bad:
            message = f"Not user:<id>, role:<name> or *: {bad[0][:60]}"
            raise ValidationFailed([FieldError("body.entries", message)])
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            # Serialised with membership changes, which check the ACL for the live join.
            await repo.lock_channel(conn, caller.app_id, channel_id)
            await self._authority(conn, caller, channel_id, Level.MANAGE, "acl:manage:any")
            before = await load_acl(conn, caller.app_id, channel_id)
            rows = [(e.subject, e.level.value, e.effect.value) for e in entries]
            await acl_repo.replace_acl(
                conn,
                caller.app_id,
                resource(channel_id),
                rows,
                by=caller.subject,
                now=self._ctx.clock.now(),
            )
            after = await load_acl(conn, caller.app_id, channel_id)
            await self._emit(
                caller,
                origin,
                resource(channel_id),
                {"change": "acl.replace", "before": _render(before), "after": _render(after)},
            )
            now = self._ctx.clock.now()
            gained, lost = await read_changes(conn, caller.app_id, channel_id, before, after, now)
        announce_access(outbox, caller.app_id, channel_id, gained, lost)
        await outbox.publish(self._ctx.broker)
        return after

    def _check_future(self, expires_at: datetime | None) -> None:
        if expires_at is not None and expires_at <= self._ctx.clock.now():
            raise ValidationFailed([FieldError("body.expires_at", "Must be in the future.")])

    async def _last_owner(self, conn: Connection, caller: Principal, channel_id: str) -> bool:
        return await repo.count_role(conn, caller.app_id, channel_id, Role.OWNER) <= 1

    async def _apply(
        self, conn: Connection, caller: Principal, target: MemberRecord, changes: dict[str, Any]
    ) -> MemberRecord:
        await repo.update_member(conn, caller.app_id, target.channel_id, target.user_id, changes)
        found = await repo.get_member(conn, caller.app_id, target.channel_id, target.user_id)
        if found is None:
            raise NotFound("No such member.")
        return found

    async def _publish_update(self, caller: Principal, member: MemberRecord) -> None:
        outbox = Outbox()
        outbox.add(
            caller.app_id, "member.updated", member_view(member), channel_id=member.channel_id
        )
        await outbox.publish(self._ctx.broker)

    async def _changed(
        self,
        caller: Principal,
        origin: Origin,
        member: MemberRecord,
        change: str,
        before: str,
        expires_at: datetime | None,
    ) -> None:
        details: dict[str, Detail] = {
            "change": change,
            "user_id": member.user_id,
            "before": before,
            "after": member.role,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        await self._emit(caller, origin, resource(member.channel_id), details)

    async def _emit(
        self, caller: Principal, origin: Origin, on: str, details: dict[str, Detail]
    ) -> None:
        await record_change(self._ctx, caller, origin, on, details)
