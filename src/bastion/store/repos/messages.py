"""Messages and reactions."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import DuplicateKeyError, MessageRecord
from bastion.store.repos import pending_terms as pending
from bastion.store.repos._sql import insert_ignoring_duplicates
from bastion.store.sealing import Cell, Owner, cipher_of, open_value, seal
from bastion.store.sqlite_inline import DirectConnection, PreparedWrite
from bastion.store.tables import channel_members, message_terms, messages, reactions

_INSERT = messages.insert()
# Every send runs it: on SQLite straight on the driver (the row id is the new seq).
_INSERT_SQLITE = PreparedWrite.of(_INSERT, [c.name for c in messages.c if c.name != "seq"])
_BY_ID = select(messages).where(
    messages.c.app_id == bindparam("app_id"), messages.c.id == bindparam("message_id")
)
_BY_CLIENT_MSG_ID = select(messages).where(
    messages.c.app_id == bindparam("app_id"),
    messages.c.author_id == bindparam("author_id"),
    messages.c.client_msg_id == bindparam("client_msg_id"),
)


def _cell(app_id: str, message_id: str) -> Cell:
    return Cell(app_id, "messages", "body", message_id)


async def _message(conn: AsyncConnection, row: Mapping[Any, Any]) -> MessageRecord:
    """A record from a row, its body opened (bodies are sealed under the channel's key)."""
    values = dict(row)
    del values["pending_terms"]
    values["mentions"] = tuple(values["mentions"].split()) if values["mentions"] else ()
    if values["body"] is not None:
        values["body"] = await open_value(
            conn, _cell(values["app_id"], values["id"]), values["body"]
        )
    return MessageRecord(**values)


async def _seal_body(
    conn: AsyncConnection, app_id: str, channel_id: str, message_id: str, body: str
) -> str:
    """Seal a body and index its words (blind index, keyed per channel)."""
    cell = _cell(app_id, message_id)
    sealed = await seal(conn, cell, Owner("channel", channel_id), body)
    return sealed


async def _pending_terms(
    conn: AsyncConnection, app_id: str, channel_id: str, body: str | None
) -> str | None:
    """The body's blind-index terms, as stored on the row until the indexer files them."""
    if body is None:
        return None
    return pending.encode(await cipher_of(conn).terms(conn, app_id, channel_id, body))


async def insert_message(
    conn: AsyncConnection,
    app_id: str,
    *,
    message_id: str,
    channel_id: str,
    author_id: str,
    parent_id: str | None,
    body: str,
    mentions: tuple[str, ...],
    client_msg_id: str | None,
    now: datetime,
) -> MessageRecord:
    """Store a new message; a reused client message id raises ``DuplicateKeyError``."""
    values: dict[str, Any] = {
        "id": message_id,
        "app_id": app_id,
        "channel_id": channel_id,
        "author_id": author_id,
        "parent_id": parent_id,
        "body": await _seal_body(conn, app_id, channel_id, message_id, body),
        "mentions": " ".join(mentions),
        "client_msg_id": client_msg_id,
        "reply_count": 0,
        "created_at": now,
        "edited_at": None,
        "deleted_at": None,
        "version": 1,
        "pending_terms": await _pending_terms(conn, app_id, channel_id, body),
    }
    try:
        if isinstance(conn, DirectConnection):
            values["seq"] = await conn.write_rows(_INSERT_SQLITE, [values])
        else:
            result = await conn.execute(_INSERT, values)
            # The autoincrement key: SQLite reports it without a RETURNING round of its own.
            (values["seq"],) = result.inserted_primary_key or (None,)
    except IntegrityError as exc:
        raise DuplicateKeyError("messages") from exc
    del values["pending_terms"]
    return MessageRecord(**{**values, "body": body, "mentions": tuple(mentions)})


async def get_message(conn: AsyncConnection, app_id: str, message_id: str) -> MessageRecord | None:
    """Return the app's message, or None."""
    params = {"app_id": app_id, "message_id": message_id}
    row = (await conn.execute(_BY_ID, params)).mappings().first()
    return await _message(conn, row) if row else None


async def lock_message(conn: AsyncConnection, app_id: str, message_id: str) -> None:
    """Hold the message's row until the transaction ends (``SELECT … FOR UPDATE``).

    Edits, deletions and reactions take this lock before they read the message, so a
    check on its state (deleted, version, distinct emoji) holds until the change commits.
    SQLite writers are serialised already, and SQLAlchemy renders no ``FOR UPDATE`` there.
    """
    query = (
        select(messages.c.id)
        .where(messages.c.app_id == app_id, messages.c.id == message_id)
        .with_for_update()
    )
    await conn.execute(query)


async def get_messages(
    conn: AsyncConnection, app_id: str, message_ids: Collection[str]
) -> dict[str, MessageRecord]:
    """Return the app's messages with these ids, keyed by id."""
    if not message_ids:
        return {}
    query = select(messages).where(
        messages.c.app_id == app_id, messages.c.id.in_(list(message_ids))
    )
    rows = (await conn.execute(query)).mappings().all()
    return {row["id"]: await _message(conn, row) for row in rows}


async def get_by_client_msg_id(
    conn: AsyncConnection, app_id: str, author_id: str, client_msg_id: str
) -> MessageRecord | None:
    """Return the message this author sent with this client message id, or None."""
    params = {"app_id": app_id, "author_id": author_id, "client_msg_id": client_msg_id}
    row = (await conn.execute(_BY_CLIENT_MSG_ID, params)).mappings().first()
    return await _message(conn, row) if row else None


async def list_messages(
    conn: AsyncConnection,
    app_id: str,
    channel_id: str,
    *,
    parent_id: str | None,
    top_level: bool = False,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
) -> list[MessageRecord]:
    """Return a page of a channel's messages (or one thread's replies) in ``seq`` order.

    ``top_level`` leaves thread replies out. With ``after_seq`` the page is the oldest
    messages after it; otherwise it is the newest before ``before_seq`` (or the newest
    of all). Either way it is returned oldest first.
    """
    query = select(messages).where(messages.c.app_id == app_id, messages.c.channel_id == channel_id)
    if parent_id is not None:
        query = query.where(messages.c.parent_id == parent_id)
    if top_level:
        query = query.where(messages.c.parent_id.is_(None))
    if after_seq is not None:
        query = query.where(messages.c.seq > after_seq).order_by(messages.c.seq.asc())
    else:
        if before_seq is not None:
            query = query.where(messages.c.seq < before_seq)
        query = query.order_by(messages.c.seq.desc())
    found = (await conn.execute(query.limit(limit))).mappings().all()
    rows = [await _message(conn, row) for row in found]
    return rows if after_seq is not None else rows[::-1]


async def update_message(
    conn: AsyncConnection, app_id: str, message_id: str, changes: dict[str, Any]
) -> None:
    """Apply changes to a message and bump its version; a new body is sealed and indexed.

    The new body's terms replace the old ones: the filed ones are removed now and the
    new ones wait on the row for the indexer, like a new message's.
    """
    if "body" in changes:
        query = select(messages.c.channel_id).where(
            messages.c.app_id == app_id, messages.c.id == message_id
        )
        channel_id = (await conn.execute(query)).scalar_one()
        body = changes["body"]
        changes = {
            **changes,
            "pending_terms": await _pending_terms(conn, app_id, channel_id, body),
        }
        if body is not None:
            changes["body"] = await _seal_body(conn, app_id, channel_id, message_id, body)
        await conn.execute(delete(message_terms).where(message_terms.c.message_id == message_id))
    await conn.execute(
        update(messages)
        .where(messages.c.app_id == app_id, messages.c.id == message_id)
        .values(**changes, version=messages.c.version + 1)
    )


async def change_reply_count(
    conn: AsyncConnection, app_id: str, message_id: str, delta: int
) -> None:
    """Add ``delta`` to a message's reply count."""
    await conn.execute(
        update(messages)
        .where(messages.c.app_id == app_id, messages.c.id == message_id)
        .values(reply_count=messages.c.reply_count + delta)
    )


async def unread_counts(
    conn: AsyncConnection, app_id: str, user_id: str, channel_ids: Collection[str]
) -> dict[str, int]:
    """Count, per channel, the live messages by others after the user's read position."""
    if not channel_ids:
        return {}
    query = (
        select(messages.c.channel_id, func.count())
        .join(
            channel_members,
            (channel_members.c.channel_id == messages.c.channel_id)
            & (channel_members.c.user_id == user_id),
        )
        .where(
            messages.c.app_id == app_id,
            messages.c.channel_id.in_(list(channel_ids)),
            messages.c.seq > channel_members.c.last_read_seq,
            messages.c.author_id != user_id,
            messages.c.deleted_at.is_(None),
        )
        .group_by(messages.c.channel_id)
    )
    return {row[0]: int(row[1]) for row in await conn.execute(query)}


async def add_reaction(
    conn: AsyncConnection, app_id: str, *, message_id: str, user_id: str, emoji: str, now: datetime
) -> bool:
    """Add a reaction; tell whether it is new (adding it twice changes nothing)."""
    statement = insert_ignoring_duplicates(conn, reactions).values(
        message_id=message_id, user_id=user_id, emoji=emoji, app_id=app_id, created_at=now
    )
    return bool((await conn.execute(statement)).rowcount)


async def remove_reaction(
    conn: AsyncConnection, app_id: str, *, message_id: str, user_id: str, emoji: str
) -> bool:
    """Remove a reaction; tell whether there was one."""
    result = await conn.execute(
        delete(reactions).where(
            reactions.c.app_id == app_id,
            reactions.c.message_id == message_id,
            reactions.c.user_id == user_id,
            reactions.c.emoji == emoji,
        )
    )
    return bool(result.rowcount)


async def clear_reactions(conn: AsyncConnection, app_id: str, message_id: str) -> None:
    """Remove every reaction to a message (a deleted message keeps none)."""
    await conn.execute(
        delete(reactions).where(reactions.c.app_id == app_id, reactions.c.message_id == message_id)
    )


async def distinct_emoji_count(conn: AsyncConnection, app_id: str, message_id: str) -> int:
    """Return how many different emoji a message carries."""
    query = select(func.count(func.distinct(reactions.c.emoji))).where(
        reactions.c.app_id == app_id, reactions.c.message_id == message_id
    )
    return int((await conn.execute(query)).scalar_one())


async def reaction_summary(
    conn: AsyncConnection, app_id: str, user_id: str, message_ids: Collection[str]
) -> dict[str, tuple[dict[str, int], set[str]]]:
    """Per message: the count of each emoji, and the emoji this user added."""
    if not message_ids:
        return {}
    ids = list(message_ids)
    counts_query = (
        select(reactions.c.message_id, reactions.c.emoji, func.count())
        .where(reactions.c.app_id == app_id, reactions.c.message_id.in_(ids))
        .group_by(reactions.c.message_id, reactions.c.emoji)
    )
    summary: dict[str, tuple[dict[str, int], set[str]]] = {}
    for message_id, emoji, count in await conn.execute(counts_query):
        summary.setdefault(message_id, ({}, set()))[0][emoji] = int(count)
    own_query = select(reactions.c.message_id, reactions.c.emoji).where(
        reactions.c.app_id == app_id,
        reactions.c.message_id.in_(ids),
        reactions.c.user_id == user_id,
    )
    for message_id, emoji in await conn.execute(own_query):
        summary.setdefault(message_id, ({}, set()))[1].add(emoji)
    return summary


async def seq_of(
    conn: AsyncConnection, app_id: str, channel_id: str, message_id: str
) -> int | None:
    """Return the position of a message within its channel, or None."""
    query = select(messages.c.seq).where(
        messages.c.app_id == app_id,
        messages.c.channel_id == channel_id,
        messages.c.id == message_id,
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def search(
    conn: AsyncConnection, app_id: str, channel_ids: Collection[str], text: str, limit: int
) -> list[MessageRecord]:
    """Live messages of these channels holding every word of ``text``, newest first.

    Each channel's words are looked up by their blind-index terms under that channel's
    index key; no plaintext is compared.
    """
    cipher = cipher_of(conn)
    found: list[tuple[int, Mapping[Any, Any]]] = []
    for channel_id in channel_ids:
        terms = await cipher.query_terms(conn, app_id, channel_id, text)
        if not terms:
            continue
        filed = (
            select(message_terms.c.message_id)
            .where(
                message_terms.c.app_id == app_id,
                message_terms.c.channel_id == channel_id,
                message_terms.c.term.in_(terms),
            )
            .group_by(message_terms.c.message_id)
            .having(func.count() == len(terms))
        )
        # Terms not yet filed by the indexer: the same test on the row's own terms. One
        # statement reads both, so a message being filed meanwhile is seen exactly once.
        waiting = select(messages.c.id).where(
            messages.c.app_id == app_id,
            messages.c.channel_id == channel_id,
            messages.c.pending_terms.is_not(None),
            *(pending.holds(conn, term) for term in terms),
        )
        matching = union(filed, waiting)
        query = (
            select(messages)
            .where(messages.c.id.in_(matching), messages.c.deleted_at.is_(None))
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        found.extend((row["seq"], row) for row in (await conn.execute(query)).mappings().all())
    found.sort(key=lambda item: item[0], reverse=True)
    return [await _message(conn, row) for _, row in found[:limit]]
