"""Logins: credentials, TOTP enrolment, recovery codes and failed-login counters.

A TOTP secret is sealed under its user's data key, bound to its cell
(app, ``login_credentials``, ``totp_secret``, user id); credential records only say
whether one is stored, and ``totp_secret`` opens it when a code must be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import CredentialRecord, DuplicateKeyError, FailureRecord
from bastion.store.repos._sql import insert_row
from bastion.store.sealing import (
    ERASED,
    Cell,
    Owner,
    open_value,
    seal,
)
from bastion.store.tables import login_credentials, login_failures, recovery_codes

_TOTP = "totp_secret"


def totp_cell(app_id: str, user_id: str) -> Cell:
    """Where a user's TOTP secret lives: the associated data its ciphertext is bound to."""
    return Cell(app_id, login_credentials.name, _TOTP, user_id)


def _credential(row: Mapping[Any, Any]) -> CredentialRecord:
    return CredentialRecord(
        user_id=row["user_id"],
        app_id=row["app_id"],
        username=row["username"],
        password_hash=row["password_hash"],
        has_totp_secret=row["totp_secret"] is not None,
        totp_enabled=row["totp_enabled"],
        totp_last_step=row["totp_last_step"],
        mfa_required=row["mfa_required"],
    )


async def by_username(conn: AsyncConnection, app_id: str, username: str) -> CredentialRecord | None:
    """The credentials of an app's user by login name."""
    query = select(login_credentials).where(
        login_credentials.c.app_id == app_id, login_credentials.c.username == username
    )
    row = (await conn.execute(query)).mappings().first()
    return _credential(row) if row else None


async def by_user(conn: AsyncConnection, app_id: str, user_id: str) -> CredentialRecord | None:
    """The credentials of an app's user by id."""
    query = select(login_credentials).where(
        login_credentials.c.app_id == app_id, login_credentials.c.user_id == user_id
    )
    row = (await conn.execute(query)).mappings().first()
    return _credential(row) if row else None


async def set_password(
    conn: AsyncConnection,
    *,
    app_id: str,
    user_id: str,
    username: str,
    password_hash: str,
    now: datetime,
) -> None:
    """Create or replace a user's username and password; a taken username raises."""
    existing = await by_user(conn, app_id, user_id)
    if existing is None:
        values = {
            "user_id": user_id,
            "app_id": app_id,
            "username": username,
            "password_hash": password_hash,
            "totp_secret": None,
            "totp_enabled": False,
            "totp_last_step": 0,
            "mfa_required": False,
            "created_at": now,
            "updated_at": now,
        }
        await insert_row(conn, login_credentials, values)
        return
    taken = await by_username(conn, app_id, username)
    if taken is not None and taken.user_id != user_id:
        raise DuplicateKeyError("login_credentials")
    await update_credentials(
        conn, app_id, user_id, username=username, password_hash=password_hash, updated_at=now
    )


async def set_totp_secret(
    conn: AsyncConnection, app_id: str, user_id: str, secret: str, *, enabled: bool
) -> None:
    """Store a TOTP secret, sealed under the user's data key."""
    sealed = await seal(conn, totp_cell(app_id, user_id), Owner("user", user_id), secret)
    await conn.execute(
        update(login_credentials)
        .where(login_credentials.c.app_id == app_id, login_credentials.c.user_id == user_id)
        .values({_TOTP: sealed, "totp_enabled": enabled})
    )


async def totp_secret(conn: AsyncConnection, app_id: str, user_id: str) -> str | None:
    """A user's TOTP secret in the clear; None if there is none or it was erased.

    Raises ``core.errors.IntegrityFailure`` when the stored value does not open (it was
    altered, or copied from another row). A value written before secrets were sealed is
    read as it is until the migration (or ``bastion keys reencrypt``) seals it.
    """
    query = select(login_credentials.c[_TOTP]).where(
        login_credentials.c.app_id == app_id, login_credentials.c.user_id == user_id
    )
    stored = (await conn.execute(query)).scalar_one_or_none()
    if stored is None:
        return None
    opened = await open_value(conn, totp_cell(app_id, user_id), stored)
    return None if opened == ERASED else opened


def _login(app_id: str, user_id: str) -> ColumnElement[bool]:
    return (login_credentials.c.app_id == app_id) & (login_credentials.c.user_id == user_id)


async def update_credentials(
    conn: AsyncConnection, app_id: str, user_id: str, **values: Any
) -> None:
    """Change an app's user's credential columns."""
    await conn.execute(update(login_credentials).where(_login(app_id, user_id)).values(values))


async def use_totp_step(conn: AsyncConnection, app_id: str, user_id: str, step: int) -> bool:
    """Accept a TOTP time step once: True if it is newer than the last one used."""
    result = await conn.execute(
        update(login_credentials)
        .where(_login(app_id, user_id), login_credentials.c.totp_last_step < step)
        .values(totp_last_step=step)
    )
    return bool(result.rowcount)


async def replace_recovery_codes(
    conn: AsyncConnection, app_id: str, user_id: str, code_hashes: list[str]
) -> None:
    """Replace a user's recovery codes (stored hashed)."""
    await conn.execute(
        delete(recovery_codes).where(
            recovery_codes.c.app_id == app_id, recovery_codes.c.user_id == user_id
        )
    )
    for code_hash in code_hashes:
        await conn.execute(
            recovery_codes.insert().values(
                user_id=user_id, code_hash=code_hash, app_id=app_id, used_at=None
            )
        )


async def use_recovery_code(
    conn: AsyncConnection, app_id: str, user_id: str, code_hash: str, now: datetime
) -> bool:
    """Spend a recovery code; True if it existed and was unused."""
    result = await conn.execute(
        update(recovery_codes)
        .where(
            recovery_codes.c.app_id == app_id,
            recovery_codes.c.user_id == user_id,
            recovery_codes.c.code_hash == code_hash,
            recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(result.rowcount)


def _failure(row: Mapping[Any, Any]) -> FailureRecord:
    return FailureRecord(
        app_id=row["app_id"],
        subject=row["subject"],
        num_failures=row["num_failures"],
        last_failure=row["last_failure"],
        last_ip=row["last_ip"],
        locked_until=row["locked_until"],
        temporary_lockouts=row["temporary_lockouts"],
        permanently_locked=row["permanently_locked"],
    )


async def get_failures(conn: AsyncConnection, app_id: str, subject: str) -> FailureRecord | None:
    """The failure counters of an account or address."""
    query = select(login_failures).where(
        login_failures.c.app_id == app_id, login_failures.c.subject == subject
    )
    row = (await conn.execute(query)).mappings().first()
    return _failure(row) if row else None


async def save_failures(conn: AsyncConnection, record: FailureRecord) -> None:
    """Write the failure counters of an account or address."""
    await clear_failures(conn, record.app_id, record.subject)
    await conn.execute(
        login_failures.insert().values(
            app_id=record.app_id,
            subject=record.subject,
            num_failures=record.num_failures,
            last_failure=record.last_failure,
            last_ip=record.last_ip,
            locked_until=record.locked_until,
            temporary_lockouts=record.temporary_lockouts,
            permanently_locked=record.permanently_locked,
        )
    )


async def clear_failures(conn: AsyncConnection, app_id: str, subject: str) -> None:
    """Forget the counters (after a successful login, or an administrator's unlock)."""
    await conn.execute(
        delete(login_failures).where(
            login_failures.c.app_id == app_id, login_failures.c.subject == subject
        )
    )
