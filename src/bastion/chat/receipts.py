"""Read receipts (last message read per member) and typing indicators."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.chat.channels import acting_user, load_access
from bastion.chat.context import ChatContext, Outbox
from bastion.chat.denials import reports
from bastion.chat.views import member_view
from bastion.core.errors import Conflict, FieldError, ValidationFailed
from bastion.core.ids import Kind, is_id
from bastion.security import scopes
from bastion.security.acl import Level
from bastion.security.principal import Principal
from bastion.store.records import MemberRecord
from bastion.store.repos import channels as channel_repo
from bastion.store.repos import messages as message_repo


@dataclass(frozen=True, slots=True)
class ReadState:
    """Where a member has read up to, and how much is left unread."""

    member: MemberRecord
    unread_count: int


class Receipts:
    """Read positions and typing notifications."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("receipt:write")
    async def mark_read(self, caller: Principal, channel_id: str, message_id: str) -> ReadState:
        """Move the caller's read position forward to ``message_id`` (never backwards)."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            access = await load_access(self._ctx, conn, caller, user_id, channel_id)
            member = access.require_member()
            seq = None
            if is_id(Kind.MESSAGE, message_id):
                seq = await message_repo.seq_of(conn, caller.app_id, channel_id, message_id)
            if seq is None:
                raise ValidationFailed(
                    [FieldError("body.message_id", "Not a message of this channel.")]
                )
            if seq > member.last_read_seq:
                moved = await channel_repo.advance_read_position(
                    conn,
                    caller.app_id,
                    channel_id,
                    user_id,
                    seq=seq,
                    message_id=message_id,
                    now=self._ctx.clock.now(),
                )
                # Read back either way: a concurrent mark may have gone further meanwhile.
                access = await load_access(self._ctx, conn, caller, user_id, channel_id)
                member = access.require_member()
                if moved:
                    outbox.add(
                        caller.app_id, "read.updated", member_view(member), channel_id=channel_id
                    )
            unread = await message_repo.unread_counts(conn, caller.app_id, user_id, [channel_id])
        await outbox.publish(self._ctx.broker)
        return ReadState(member, unread.get(channel_id, 0))

    @reports("message:send")
    async def typing(self, caller: Principal, channel_id: str, *, active: bool) -> None:
        """Tell the channel's other members the caller started or stopped typing (not
        stored); the caller's own connections, on any device, are not told."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        async with self._ctx.db.read() as conn:
            access = await load_access(self._ctx, conn, caller, user_id, channel_id)
        access.require(Level.WRITE, "Your role in this channel does not allow posting.")
        if access.channel.archived:
            # Nobody can send there, so nobody is about to.
            raise Conflict("The channel is archived.")
        outbox = Outbox()
        outbox.add(
            caller.app_id,
            "typing",
            {"channel_id": channel_id, "user_id": user_id, "state": "start" if active else "stop"},
            channel_id=channel_id,
            except_user=user_id,
        )
        await outbox.publish(self._ctx.broker)
