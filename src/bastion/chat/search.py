"""Keyword search over sealed message bodies, only in the caller's channels.

The words asked for are turned into blind-index terms with each of the caller's
channels' index keys (``security.crypto.envelope``); messages holding every term are
returned newest first. The server never stores or compares plaintext words.
"""

from __future__ import annotations

from bastion.chat.access import readable_channel_ids
from bastion.chat.channels import acting_user
from bastion.chat.context import ChatContext
from bastion.chat.denials import reports
from bastion.chat.messages import MessageEntry
from bastion.core.errors import FieldError, ValidationFailed
from bastion.security import scopes
from bastion.security.crypto.envelope import MAX_TERM_CHARS, words
from bastion.security.principal import Principal
from bastion.store.repos import messages as repo

MAX_QUERY_WORDS = 8


class Search:
    """Message search."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("message:read")
    async def messages(self, caller: Principal, query: str, limit: int) -> list[MessageEntry]:
        """Live messages, in channels the caller belongs to, containing every word of ``query``."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        wanted = words(query)
        if not wanted:
            raise ValidationFailed(
                [FieldError("query.q", f"Give at least one word of 2 to {MAX_TERM_CHARS} letters.")]
            )
        if len(wanted) > MAX_QUERY_WORDS:
            raise ValidationFailed([FieldError("query.q", f"At most {MAX_QUERY_WORDS} words.")])
        async with self._ctx.db.read() as conn:
            now = self._ctx.clock.now()
            channel_ids = await readable_channel_ids(conn, caller, user_id, now)
            found = await repo.search(conn, caller.app_id, channel_ids, " ".join(wanted), limit)
            summary = await repo.reaction_summary(
                conn, caller.app_id, caller.subject, [m.id for m in found]
            )
        return [MessageEntry(m, *summary.get(m.id, ({}, set()))) for m in found]
