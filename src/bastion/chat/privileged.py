"""Reads of message content by someone who is not a member of the channel.

A channel's ACL can let a non-member read it: an auditor on one channel
(``user:<id> allow read``), a compliance or support role on many
(``role:auditor allow read``). Every answer that carries message text to such a
reader is recorded as a ``message.read_privileged`` event: who, which channel, how
many messages, through which route. Members' own reads are not recorded (there are
far too many, and they are the channel's ordinary use).

No other path shows a non-member message text: app roles (admin, moderator, auditor)
read a channel only through such an ACL grant, backend tokens cannot act in chat,
search looks only in the caller's own channels, and live events go only to members.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.chat.access import ChannelAccess, resource
from bastion.chat.context import ChatContext
from bastion.security.audit.context import current_origin, current_route
from bastion.security.authz import actor_of
from bastion.security.principal import Principal
from bastion.store.records import MessageRecord

ACTION = "message.read_privileged"


async def record_read(
    ctx: ChatContext,
    caller: Principal,
    access: ChannelAccess,
    messages: Iterable[MessageRecord | None],
) -> None:
    """Record that a non-member was shown the text of ``messages`` (members: nothing)."""
    if access.member is not None:
        return
    count = sum(1 for m in messages if m is not None and m.body is not None)
    if count == 0:
        return
    await ctx.events.emit(
        ACTION,
        "success",
        actor=actor_of(caller),
        origin=current_origin(),
        resource=resource(access.channel.id),
        details={"count": count, "route": current_route()},
    )
