"""The authorization server's state: client profiles, codes, grants, refresh tokens.

Codes, refresh tokens and session ids are stored only as SHA-256 hashes: the database
alone never yields a usable credential.

Functions take the app id wherever the caller knows it. A few look a row up by what a
caller presents before any app is known (``identify_client``, ``get_interaction``,
``get_session``, ``claim_code``, ``get_refresh``): the presented value names one row,
and so one app; the caller checks that app against the authenticated client's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import (
    ClientProfile,
    ClientRecord,
    CodeRecord,
    GrantRecord,
    InteractionRecord,
    RefreshRecord,
    SessionRecord,
)
from bastion.store.repos._sql import insert_ignoring_duplicates, insert_row
from bastion.store.repos.apps import _client, with_app_state
from bastion.store.tables import (
    auth_interactions,
    authorization_codes,
    client_assertions,
    consents,
    login_sessions,
    oauth_client_profiles,
    oauth_clients,
    oauth_grants,
    refresh_tokens,
    revoked_tokens,
)


def _profile(row: Mapping[Any, Any]) -> ClientProfile:
    return ClientProfile(
        client_id=row["client_id"],
        app_id=row["app_id"],
        client_type=row["client_type"],
        auth_method=row["auth_method"],
        redirect_uris=tuple(u for u in row["redirect_uris"].split("\n") if u),
        grant_types=frozenset(row["grant_types"].split()),
        jwks=row["jwks"],
        first_party=row["first_party"],
        require_mfa=row["require_mfa"],
        previous_secret_hash=row["previous_secret_hash"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        tls_client_auth=(
            (row["tls_auth_field"], row["tls_auth_value"]) if row["tls_auth_field"] else None
        ),
    )


def profile_values(profile: ClientProfile) -> dict[str, Any]:
    """The row form of a profile."""
    return {
        "client_id": profile.client_id,
        "app_id": profile.app_id,
        "client_type": profile.client_type,
        "auth_method": profile.auth_method,
        "redirect_uris": "\n".join(profile.redirect_uris),
        "grant_types": " ".join(sorted(profile.grant_types)),
        "jwks": profile.jwks,
        "first_party": profile.first_party,
        "require_mfa": profile.require_mfa,
        "previous_secret_hash": profile.previous_secret_hash,
        "previous_secret_expires_at": profile.previous_secret_expires_at,
        "tls_auth_field": profile.tls_client_auth[0] if profile.tls_client_auth else None,
        "tls_auth_value": profile.tls_client_auth[1] if profile.tls_client_auth else None,
    }


def _with_profile() -> Select[Any]:
    return with_app_state(select(oauth_clients, oauth_client_profiles)).outerjoin(
        oauth_client_profiles, oauth_client_profiles.c.client_id == oauth_clients.c.id
    )


async def get_client_with_profile(
    conn: AsyncConnection, app_id: str, client_id: str
) -> tuple[ClientRecord, ClientProfile | None] | None:
    """An app's client and its profile (None for clients registered before profiles)."""
    query = _with_profile().where(oauth_clients.c.app_id == app_id, oauth_clients.c.id == client_id)
    return await _client_with_profile(conn, query)


async def identify_client(
    conn: AsyncConnection, client_id: str
) -> tuple[ClientRecord, ClientProfile | None] | None:
    """The client a caller names, before any app is known (client authentication, a
    login page): client ids are unique across apps, so the row says whose it is."""
    return await _client_with_profile(conn, _with_profile().where(oauth_clients.c.id == client_id))


async def _client_with_profile(
    conn: AsyncConnection, query: Select[Any]
) -> tuple[ClientRecord, ClientProfile | None] | None:
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    client = _client(row)
    profile = _profile(row) if row["client_type"] is not None else None
    return client, profile


async def list_clients(
    conn: AsyncConnection, app_id: str
) -> list[tuple[ClientRecord, ClientProfile | None]]:
    """Every client of an app, oldest first."""
    query = _with_profile().where(oauth_clients.c.app_id == app_id).order_by(oauth_clients.c.id)
    rows = (await conn.execute(query)).mappings().all()
    return [(_client(r), _profile(r) if r["client_type"] is not None else None) for r in rows]


async def save_profile(conn: AsyncConnection, profile: ClientProfile) -> None:
    """Insert or replace a client's profile."""
    await conn.execute(
        delete(oauth_client_profiles).where(
            oauth_client_profiles.c.app_id == profile.app_id,
            oauth_client_profiles.c.client_id == profile.client_id,
        )
    )
    await conn.execute(oauth_client_profiles.insert().values(**profile_values(profile)))


async def update_client(conn: AsyncConnection, app_id: str, client_id: str, **values: Any) -> None:
    """Change columns of the client row itself (name, secret hash, scopes, disabled)."""
    await conn.execute(
        update(oauth_clients)
        .where(oauth_clients.c.app_id == app_id, oauth_clients.c.id == client_id)
        .values(values)
    )


# Interactions: a pending authorization request and how far its login has come.


def _interaction(row: Mapping[Any, Any]) -> InteractionRecord:
    return InteractionRecord(
        id=row["id"],
        app_id=row["app_id"],
        client_id=row["client_id"],
        request=row["request"],
        browser_hash=row["browser_hash"],
        csrf=row["csrf"],
        stage=row["stage"],
        user_id=row["user_id"],
        amr=row["amr"],
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
    )


async def insert_interaction(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store a new interaction."""
    await conn.execute(auth_interactions.insert().values(**values))


async def get_interaction(conn: AsyncConnection, interaction_id: str) -> InteractionRecord | None:
    """An interaction by the id a login page presents (random, so it names one app's)."""
    query = select(auth_interactions).where(auth_interactions.c.id == interaction_id)
    row = (await conn.execute(query)).mappings().first()
    return _interaction(row) if row else None


def _interaction_key(app_id: str, interaction_id: str) -> ColumnElement[bool]:
    return (auth_interactions.c.app_id == app_id) & (auth_interactions.c.id == interaction_id)


async def update_interaction(
    conn: AsyncConnection, app_id: str, interaction_id: str, **values: Any
) -> None:
    """Advance an interaction."""
    await conn.execute(
        update(auth_interactions).where(_interaction_key(app_id, interaction_id)).values(values)
    )


async def delete_interaction(conn: AsyncConnection, app_id: str, interaction_id: str) -> bool:
    """Remove an interaction; True when it was there (so only one finisher wins)."""
    result = await conn.execute(
        delete(auth_interactions).where(_interaction_key(app_id, interaction_id))
    )
    return bool(result.rowcount)


# Browser login sessions.


async def insert_session(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store a login session (by the hash of its cookie value)."""
    await conn.execute(login_sessions.insert().values(**values))


async def get_session(conn: AsyncConnection, id_hash: str) -> SessionRecord | None:
    """A login session by the hash of the id a browser presents (it names one app's)."""
    query = select(login_sessions).where(login_sessions.c.id_hash == id_hash)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return SessionRecord(
        app_id=row["app_id"],
        user_id=row["user_id"],
        amr=row["amr"],
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
    )


async def delete_session(conn: AsyncConnection, app_id: str, id_hash: str) -> None:
    """End a login session."""
    await conn.execute(
        delete(login_sessions).where(
            login_sessions.c.app_id == app_id, login_sessions.c.id_hash == id_hash
        )
    )


# Grants (refresh-token families), codes and refresh tokens.


def _grant(row: Mapping[Any, Any]) -> GrantRecord:
    return GrantRecord(
        id=row["id"],
        app_id=row["app_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scope=row["scope"],
        auth_time=row["auth_time"],
        amr=row["amr"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


async def insert_grant(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store a grant."""
    await conn.execute(oauth_grants.insert().values(**values))


def _grant_key(app_id: str, grant_id: str) -> ColumnElement[bool]:
    return (oauth_grants.c.app_id == app_id) & (oauth_grants.c.id == grant_id)


async def get_grant(conn: AsyncConnection, app_id: str, grant_id: str) -> GrantRecord | None:
    """An app's grant by id."""
    query = select(oauth_grants).where(_grant_key(app_id, grant_id))
    row = (await conn.execute(query)).mappings().first()
    return _grant(row) if row else None


async def revoke_grant(conn: AsyncConnection, app_id: str, grant_id: str, now: datetime) -> bool:
    """Mark a grant revoked; True if it was live until now."""
    result = await conn.execute(
        update(oauth_grants)
        .where(_grant_key(app_id, grant_id), oauth_grants.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def insert_code(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store an authorization code by hash."""
    await conn.execute(authorization_codes.insert().values(**values))


async def claim_code(
    conn: AsyncConnection, code_hash: str, now: datetime
) -> tuple[CodeRecord | None, bool]:
    """Look up the code a client presents and mark it used; the flag says whether this
    call was first. The record names the code's app and client for the caller to check."""
    query = select(authorization_codes).where(authorization_codes.c.code_hash == code_hash)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None, False
    result = await conn.execute(
        update(authorization_codes)
        .where(
            authorization_codes.c.code_hash == code_hash,
            authorization_codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    record = CodeRecord(
        grant_id=row["grant_id"],
        app_id=row["app_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        scope=row["scope"],
        code_challenge=row["code_challenge"],
        nonce=row["nonce"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
    )
    return record, bool(result.rowcount)


async def insert_refresh(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store a refresh token by hash."""
    await conn.execute(refresh_tokens.insert().values(**values))


async def get_refresh(conn: AsyncConnection, token_hash: str) -> RefreshRecord | None:
    """A refresh token by the hash of what a client presents; the record names its app."""
    query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return RefreshRecord(
        grant_id=row["grant_id"],
        app_id=row["app_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        rotated_at=row["rotated_at"],
    )


async def grant_access_tokens(
    conn: AsyncConnection, app_id: str, grant_id: str, now: datetime
) -> list[tuple[str, datetime]]:
    """The access tokens issued under a grant that have not expired: (jti, expiry)."""
    query = select(refresh_tokens.c.access_jti, refresh_tokens.c.access_expires_at).where(
        refresh_tokens.c.app_id == app_id,
        refresh_tokens.c.grant_id == grant_id,
        refresh_tokens.c.access_expires_at > now,
    )
    return [(r.access_jti, r.access_expires_at) for r in (await conn.execute(query)).all()]


async def rotate_refresh(
    conn: AsyncConnection, app_id: str, token_hash: str, now: datetime
) -> bool:
    """Mark a refresh token used; True only for the one caller that used it first."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(
            refresh_tokens.c.app_id == app_id,
            refresh_tokens.c.token_hash == token_hash,
            refresh_tokens.c.rotated_at.is_(None),
        )
        .values(rotated_at=now)
    )
    return bool(result.rowcount)


# Revoked access tokens, consents and used client assertions.


async def revoke_token(
    conn: AsyncConnection, jti: str, app_id: str, expires_at: datetime, now: datetime
) -> None:
    """Remember a revoked access token until it would have expired (twice is fine)."""
    values = {"jti": jti, "app_id": app_id, "expires_at": expires_at, "revoked_at": now}
    await conn.execute(insert_ignoring_duplicates(conn, revoked_tokens).values(**values))


async def get_consent(
    conn: AsyncConnection, app_id: str, user_id: str, client_id: str
) -> str | None:
    """The scope an app's user consented to for a client, if any."""
    query = select(consents.c.scope).where(
        consents.c.app_id == app_id,
        consents.c.user_id == user_id,
        consents.c.client_id == client_id,
    )
    scope: str | None = (await conn.execute(query)).scalar()
    return scope


async def save_consent(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Record (or widen) a consent."""
    await conn.execute(
        delete(consents).where(
            consents.c.app_id == values["app_id"],
            consents.c.user_id == values["user_id"],
            consents.c.client_id == values["client_id"],
        )
    )
    await conn.execute(consents.insert().values(**values))


async def use_assertion(
    conn: AsyncConnection, client_id: str, jti: str, expires_at: datetime
) -> None:
    """Record a client assertion's jti; a replay raises ``DuplicateKeyError``.

    The row is the client's alone (client ids are unique across apps) and is only ever
    inserted, then purged when it expires.

    The caller must let the error end the transaction: on PostgreSQL a failed insert
    aborts it, so nothing else (such as its audit record) may be written in it.
    """
    values = {"client_id": client_id, "jti": jti, "expires_at": expires_at}
    await insert_row(conn, client_assertions, values)
