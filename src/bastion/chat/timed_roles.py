"""Timed roles that end by themselves: a ban or a mute given with an expiry.

A timed role is stored with its end (``role_expires_at``) and the role it gives way to
(``role_after``), and every read applies it (``access.effective``): it ends on time in
every answer, with nothing written. What no read does is tell the live connections. So
every ``realtime.timed_role_check_seconds`` each node looks up the timed roles that
ended since it last looked and announces each with a ``member.updated`` event, to the
channel's members and to the member: when a ban ended and no ACL entry denies them
reading, the member's sockets join the channel's events again at that point of the
stream, as they do when a moderator lifts the ban.

Each node announces to its own connections (the broker is in-process). A role that
ended while no node ran is not announced: a socket that connects later reads its
channels as they are.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from bastion.chat.access import BANNED, effective, member_reads
from bastion.chat.context import ChatContext, Outbox
from bastion.chat.views import member_view
from bastion.core.errors import Unavailable
from bastion.store.repos import cross_tenant


async def announce_ended(ctx: ChatContext, after: datetime, until: datetime) -> int:
    """Announce the timed roles that ended after ``after`` and by ``until``; how many."""
    outbox = Outbox()
    async with ctx.db.read() as conn:
        ended = await cross_tenant.timed_roles_ended(conn, after, until)
        for member in ended:
            rejoins = member.role == BANNED and await member_reads(
                conn, member.app_id, member.channel_id, member.user_id
            )
            outbox.add(
                member.app_id,
                "member.updated",
                member_view(effective(member, until)),
                channel_id=member.channel_id,
                user_ids=(member.user_id,),
                joins=((member.user_id, member.channel_id),) if rejoins else (),
            )
    await outbox.publish(ctx.broker)
    return len(ended)


async def keep_announcing(ctx: ChatContext, interval: float) -> None:
    """Announce ended timed roles every ``interval`` seconds, forever; a check the
    database refuses is made up by the next one, which covers both periods."""
    after = ctx.clock.now()
    while True:
        await asyncio.sleep(interval)
        until = ctx.clock.now()
        try:
            await announce_ended(ctx, after, until)
        except Unavailable:
            continue
        after = until
