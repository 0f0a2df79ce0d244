"""Channel members: add, change role, remove, leave, list."""

from __future__ import annotations

from bastion.chat import roles
from bastion.chat.access import BANNED, effective, member_reads
from bastion.chat.channels import acting_user, load_access, new_member
from bastion.chat.context import ChatContext, Outbox, check_version
from bastion.chat.denials import reports
from bastion.chat.paging import Page, one_direction, page_both_ways
from bastion.chat.roles import ChannelType, Role
from bastion.chat.views import member_view
from bastion.core.errors import Conflict, FieldError, LimitExceeded, NotFound, ValidationFailed
from bastion.security import scopes
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, DuplicateKeyError, MemberRecord
from bastion.store.repos import channels as repo
from bastion.store.repos import users as user_repo

_ALREADY_MEMBER = "The user is already a member of this channel (or banned from it)."


class Members:
    """Membership commands and queries."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("member:add")
    async def add(
        self, caller: Principal, channel_id: str, user_id: str, role: Role
    ) -> MemberRecord:
        """Add a user to a group or broadcast channel (owners and moderators)."""
        actor_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        try:
            async with self._ctx.db.write() as conn:
                await repo.lock_channel(conn, caller.app_id, channel_id)
                access = await load_access(self._ctx, conn, caller, actor_id, channel_id)
                self._check_add(access.channel, access.acting(), role)
                if await repo.get_member(conn, caller.app_id, channel_id, user_id) is not None:
                    raise Conflict(_ALREADY_MEMBER)
                self._check_room(access.channel)
                if not await user_repo.active_user_ids(conn, caller.app_id, [user_id]):
                    raise ValidationFailed(
                        [FieldError("body.user_id", "Not an active user of this app.")]
                    )
                member = new_member(caller.app_id, channel_id, user_id, role, self._ctx.clock.now())
                await repo.insert_member(conn, caller.app_id, member)
                await repo.change_member_count(conn, caller.app_id, channel_id, 1)
                # An ACL may deny the new member reading: then they are told, not subscribed.
                reads = await member_reads(conn, caller.app_id, channel_id, user_id)
        except DuplicateKeyError:
            # The look-up above answers first; the primary key still has the last word.
            raise Conflict(_ALREADY_MEMBER) from None
        outbox.add(
            caller.app_id,
            "member.added",
            member_view(member),
            channel_id=channel_id,
            user_ids=(user_id,),
            joins=((user_id, channel_id),) if reads else (),
        )
        await outbox.publish(self._ctx.broker)
        return member

    @staticmethod
    def _check_add(channel: ChannelRecord, actor: MemberRecord, role: Role) -> None:
        if channel.type == ChannelType.DIRECT:
            raise Conflict("A direct channel has exactly two members.")
        if channel.archived:
            raise Conflict("The channel is archived.")
        roles.require_may_assign(actor, role)

    def _check_room(self, channel: ChannelRecord) -> None:
        """A full channel takes nobody new (checked after "already a member", a 409)."""
        limits = self._ctx.limits
        cap = (
            limits.broadcast_max_members
            if channel.type == ChannelType.BROADCAST
            else limits.group_max_members
        )
        if channel.member_count >= cap:
            raise LimitExceeded("body.user_id", f"This channel is full ({cap} members).")

    @reports("member:read")
    async def page(
        self,
        caller: Principal,
        channel_id: str,
        *,
        after: str | None,
        before: str | None = None,
        limit: int,
    ) -> Page[MemberRecord, str]:
        """Return a page of a channel's members by user id, with the user ids to page on
        from either end."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        one_direction(after, before)
        now = self._ctx.clock.now()
        async with self._ctx.db.read() as conn:
            await load_access(self._ctx, conn, caller, user_id, channel_id)

            async def fetch(
                after_id: str | None, before_id: str | None, count: int
            ) -> list[MemberRecord]:
                return await repo.list_members(
                    conn, caller.app_id, channel_id, after=after_id, before=before_id, limit=count
                )

            page = await page_both_ways(
                fetch, lambda member: member.user_id, after=after, before=before, limit=limit
            )
        return Page([effective(m, now) for m in page.rows], page.prev, page.next)

    @reports("member:read")
    async def get(self, caller: Principal, channel_id: str, user_id: str) -> MemberRecord:
        """Return one member of a channel the caller belongs to."""
        actor_id = acting_user(caller, scopes.CHAT_READ)
        async with self._ctx.db.read() as conn:
            await load_access(self._ctx, conn, caller, actor_id, channel_id)
            member = _found(await repo.get_member(conn, caller.app_id, channel_id, user_id))
        return effective(member, self._ctx.clock.now())

    @reports("member:update")
    async def set_role(
        self,
        caller: Principal,
        channel_id: str,
        user_id: str,
        role: Role,
        if_match: int | None = None,
    ) -> MemberRecord:
        """Change a member's role, within what the caller's own role allows."""
        actor_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            await repo.lock_channel(conn, caller.app_id, channel_id)
            access = await load_access(self._ctx, conn, caller, actor_id, channel_id)
            target = await self._target(conn, caller.app_id, channel_id, user_id)
            check_version(target.version, if_match)
            if access.channel.type == ChannelType.DIRECT:
                raise Conflict("Roles cannot be changed in a direct channel.")
            if access.channel.archived:
                raise Conflict("The channel is archived.")
            if target.role == BANNED:
                raise Conflict("The member is banned: lift the ban first.")
            roles.require_may_assign(access.acting(), role, target.role)
            await self._keep_an_owner(conn, caller.app_id, channel_id, target, role)
            changes = {"role": role.value, "role_expires_at": None, "role_after": None}
            await repo.update_member(conn, caller.app_id, channel_id, user_id, changes)
            member = _found(await repo.get_member(conn, caller.app_id, channel_id, user_id))
        outbox.add(caller.app_id, "member.updated", member_view(member), channel_id=channel_id)
        await outbox.publish(self._ctx.broker)
        return member

    @reports("member:remove")
    async def remove(
        self, caller: Principal, channel_id: str, user_id: str, if_match: int | None = None
    ) -> None:
        """Remove a member, or leave when the caller names themself.

        Both work in an archived channel too: archiving freezes what is said and who
        holds which role, never anyone's way out.
        """
        actor_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            await repo.lock_channel(conn, caller.app_id, channel_id)
            access = await load_access(self._ctx, conn, caller, actor_id, channel_id)
            target = await self._target(conn, caller.app_id, channel_id, user_id)
            check_version(target.version, if_match)
            if access.channel.type == ChannelType.DIRECT:
                raise Conflict("Members cannot leave or be removed from a direct channel.")
            if target.role == BANNED:
                raise Conflict("The member is banned: lift the ban first.")
            if user_id != actor_id:
                roles.require_may_assign(access.acting(), target.role, target.role)
            await self._keep_an_owner(conn, caller.app_id, channel_id, target, None)
            await repo.delete_member(conn, caller.app_id, channel_id, user_id)
            await repo.change_member_count(conn, caller.app_id, channel_id, -1)
        outbox.add(
            caller.app_id,
            "member.removed",
            {"channel_id": channel_id, "user_id": user_id},
            channel_id=channel_id,
            user_ids=(user_id,),
            leaves=((user_id, channel_id),),
        )
        await outbox.publish(self._ctx.broker)

    async def _target(
        self, conn: Connection, app_id: str, channel_id: str, user_id: str
    ) -> MemberRecord:
        # Locked: moderation (mutes) changes a membership without the channel's lock.
        member = _found(await repo.get_member(conn, app_id, channel_id, user_id, lock=True))
        return effective(member, self._ctx.clock.now())

    @staticmethod
    async def _keep_an_owner(
        conn: Connection, app_id: str, channel_id: str, target: MemberRecord, new_role: Role | None
    ) -> None:
        if target.role != Role.OWNER or new_role == Role.OWNER:
            return
        if await repo.count_role(conn, app_id, channel_id, Role.OWNER) <= 1:
            raise Conflict("A channel needs an owner: make someone else owner first.")


def _found(member: MemberRecord | None) -> MemberRecord:
    if member is None:
        raise NotFound("No such member.")
    return member
