"""Queries that span every app on purpose: start-up loads, syncs between nodes, sweeps.

Every other repository function takes the app (tenant) id and keeps it in its WHERE
clause. These cannot: each serves the whole server rather than one request, and none
is reachable from a request with a caller's input. They live here, not beside their
tables, so a call from request code stands out in review.

- ``inactive_user_ids``, ``disabled_app_ids``, ``cutoffs_since``,
  ``revoked_tokens_since``: every node keeps the whole server's token revocations in
  memory and re-reads what changed.
- ``all_rate_limit_overrides``: every node keeps the whole override table in memory.
- ``forget_idempotency_keys_before``, ``purge_expired_oauth_state``: housekeeping of
  rows that expire by time, whatever their app.
- ``timed_roles_ended``: the bans and mutes that end by time, whatever their app, so
  the members' live subscriptions follow without anyone acting.
- ``seal_plaintext_totp_secrets``, ``open_sealed_totp_secrets``: migration 0011 seals
  (and its downgrade opens) every app's stored TOTP secrets.

Key rotation (``data_keys``, ``sealed_rows``), the audit chain (``audit``) and the
search indexer's queue (``pending_terms``) also work across apps, by their nature; the
functions that do are listed, with the reason, in ``tests/store/repos/test_tenancy.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import MemberRecord
from bastion.store.repos.logins import totp_cell
from bastion.store.repos.ratelimits import SEPARATOR
from bastion.store.sealing import ERASED, SEALED_PREFIX, Owner, cipher_of, open_value, seal
from bastion.store.tables import (
    apps,
    auth_interactions,
    authorization_codes,
    channel_members,
    client_assertions,
    idempotency_keys,
    login_credentials,
    login_sessions,
    rate_limit_overrides,
    refresh_tokens,
    revoked_tokens,
    token_cutoffs,
    users,
)

_TOTP = "totp_secret"


async def inactive_user_ids(conn: AsyncConnection) -> list[tuple[str, str]]:
    """Return (app id, user id) of every deactivated user, to refuse their tokens."""
    query = select(users.c.app_id, users.c.id).where(users.c.active.is_(False))
    return [(row[0], row[1]) for row in await conn.execute(query)]


async def timed_roles_ended(
    conn: AsyncConnection, after: datetime, until: datetime
) -> list[MemberRecord]:
    """The memberships whose timed role (a ban or a mute) ended after ``after`` and by
    ``until``, as stored (the role that ended, with its expiry), oldest end first."""
    ends = channel_members.c.role_expires_at
    query = (
        select(channel_members)
        .where(ends.is_not(None), ends > after, ends <= until)
        .order_by(ends, channel_members.c.channel_id, channel_members.c.user_id)
    )
    return [MemberRecord(**row) for row in (await conn.execute(query)).mappings()]


async def disabled_app_ids(conn: AsyncConnection) -> list[str]:
    """The ids of the apps that are disabled now, to refuse every token they hold."""
    found = await conn.execute(select(apps.c.id).where(apps.c.disabled_at.is_not(None)))
    return [row[0] for row in found]


async def cutoffs_since(
    conn: AsyncConnection, since: datetime | None
) -> list[tuple[str, str, datetime, datetime]]:
    """(app id, subject, issued before, updated at) of cutoffs changed after ``since``."""
    query = select(
        token_cutoffs.c.app_id,
        token_cutoffs.c.subject,
        token_cutoffs.c.issued_before,
        token_cutoffs.c.updated_at,
    )
    if since is not None:
        query = query.where(token_cutoffs.c.updated_at >= since)
    return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(query)]


async def revoked_tokens_since(
    conn: AsyncConnection, since: datetime | None, now: datetime
) -> list[tuple[str, str, datetime, datetime]]:
    """Unexpired revoked access tokens, revoked at or after ``since`` (all when None):
    (jti, app id, expiry, revocation time)."""
    query = select(
        revoked_tokens.c.jti,
        revoked_tokens.c.app_id,
        revoked_tokens.c.expires_at,
        revoked_tokens.c.revoked_at,
    ).where(revoked_tokens.c.expires_at > now)
    if since is not None:
        query = query.where(revoked_tokens.c.revoked_at >= since)
    rows = (await conn.execute(query)).all()
    return [(r.jti, r.app_id, r.expires_at, r.revoked_at) for r in rows]


async def all_rate_limit_overrides(
    conn: AsyncConnection,
) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every rate-limit override: (app id, subject, policy, quotas)."""
    t = rate_limit_overrides
    rows = await conn.execute(select(t.c.app_id, t.c.subject, t.c.policy, t.c.quotas))
    return [(r[0], r[1], r[2], tuple(r[3].split(SEPARATOR))) for r in rows]


async def forget_idempotency_keys_before(conn: AsyncConnection, moment: datetime) -> None:
    """Drop every stored ``Idempotency-Key`` answer older than ``moment``."""
    await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < moment))


async def purge_expired_oauth_state(conn: AsyncConnection, now: datetime) -> None:
    """Delete authorization-server rows that can no longer matter."""
    await conn.execute(delete(auth_interactions).where(auth_interactions.c.expires_at < now))
    await conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_at < now))
    await conn.execute(delete(client_assertions).where(client_assertions.c.expires_at < now))
    await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
    await conn.execute(delete(login_sessions).where(login_sessions.c.expires_at < now))
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < now))


async def seal_plaintext_totp_secrets(conn: AsyncConnection) -> int:
    """Seal every TOTP secret still stored in the clear; return how many were sealed.

    Run by migration 0011 with the server's cipher on the connection; without one, it
    refuses to leave secrets in the clear silently.
    """
    column = login_credentials.c[_TOTP]
    query = select(login_credentials.c.app_id, login_credentials.c.user_id, column).where(
        column.is_not(None), column.not_like(f"{SEALED_PREFIX}%")
    )
    rows = (await conn.execute(query)).all()
    if rows:
        cipher_of(conn)  # fails before anything is written when there is no cipher
    for app_id, user_id, plaintext in rows:
        sealed = await seal(conn, totp_cell(app_id, user_id), Owner("user", user_id), plaintext)
        await conn.execute(
            update(login_credentials)
            .where(_login(app_id, user_id), column == plaintext)
            .values({_TOTP: sealed})
        )
    return len(rows)


async def open_sealed_totp_secrets(conn: AsyncConnection) -> int:
    """Store every sealed TOTP secret in the clear again (undoing migration 0011); an
    erased one is dropped and TOTP turned off for its user. Return how many were opened."""
    column = login_credentials.c[_TOTP]
    query = select(login_credentials.c.app_id, login_credentials.c.user_id, column).where(
        column.like(f"{SEALED_PREFIX}%")
    )
    rows = (await conn.execute(query)).all()
    for app_id, user_id, stored in rows:
        opened = await open_value(conn, totp_cell(app_id, user_id), stored)
        values: dict[str, Any] = {_TOTP: opened}
        if opened == ERASED:
            values = {_TOTP: None, "totp_enabled": False}
        await conn.execute(update(login_credentials).where(_login(app_id, user_id)).values(values))
    return len(rows)


def _login(app_id: str, user_id: str) -> ColumnElement[bool]:
    return (login_credentials.c.app_id == app_id) & (login_credentials.c.user_id == user_id)
