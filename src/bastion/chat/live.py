"""Live subscriptions that move without a membership change: read access given or taken.

An ACL entry that denies ``read``, or an app role that such an entry names, can stop a
member reading a channel they stay in (and lifting it lets them read again). Each such
change is announced to the users it concerns only, with an ``access.updated`` event
that moves their live subscriptions at that point of the stream, as ``member.added``
and ``member.removed`` do for membership.
"""

from __future__ import annotations

from bastion.chat.context import Outbox

ACCESS_UPDATED = "access.updated"


def announce_access(
    outbox: Outbox, app_id: str, channel_id: str, gained: list[str], lost: list[str]
) -> None:
    """Queue the events that let ``gained`` users read the channel live and stop ``lost``."""
    if gained:
        outbox.add(
            app_id,
            ACCESS_UPDATED,
            {"channel_id": channel_id, "read": True},
            user_ids=tuple(gained),
            joins=tuple((user_id, channel_id) for user_id in gained),
        )
    if lost:
        outbox.add(
            app_id,
            ACCESS_UPDATED,
            {"channel_id": channel_id, "read": False},
            user_ids=tuple(lost),
            leaves=tuple((user_id, channel_id) for user_id in lost),
        )
