"""The sweep deletes expired authorization-server state and keeps what is still live."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bastion.core.clock import FakeClock
from bastion.core.ids import Kind, new_id
from bastion.store import housekeeping, migrate
from bastion.store.db import Database, create_engine
from bastion.store.repos import oauth
from bastion.store.tables import (
    auth_interactions,
    authorization_codes,
    client_assertions,
    login_sessions,
    refresh_tokens,
    revoked_tokens,
)
from tests.conftest import Databases, make_settings, start_server
from tests.support.logins import legacy_login

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PAST, FUTURE = NOW - timedelta(seconds=1), NOW + timedelta(hours=1)
SWEPT = (
    auth_interactions,
    authorization_codes,
    client_assertions,
    login_sessions,
    refresh_tokens,
    revoked_tokens,
)


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    """A fresh, migrated database."""
    engine = create_engine(databases.new())
    await migrate.upgrade(engine)
    database = Database(engine)
    yield database
    await database.close()


async def _state(db: Database, tag: str, expires_at: datetime) -> None:
    """One row in every swept table, all expiring at ``expires_at``."""
    app_id, user_id, client_id = new_id(Kind.APP), new_id(Kind.USER), new_id(Kind.CLIENT)
    common: dict[str, Any] = {"app_id": app_id, "user_id": user_id, "amr": "pwd", "auth_time": NOW}
    await legacy_login(db, app_id, user_id)
    async with db.write() as conn:
        await oauth.insert_interaction(
            conn,
            {
                **common,
                "id": f"interaction-{tag}",
                "client_id": client_id,
                "request": "{}",
                "browser_hash": tag * 64,
                "csrf": "c",
                "stage": "login",
                "created_at": NOW,
                "expires_at": expires_at,
            },
        )
        await oauth.insert_session(conn, {**common, "id_hash": tag * 64, "expires_at": expires_at})
        await oauth.insert_code(
            conn,
            {
                "code_hash": tag * 64,
                "grant_id": f"grant-{tag}",
                "app_id": app_id,
                "client_id": client_id,
                "user_id": user_id,
                "redirect_uri": "https://app.example/cb",
                "scope": "openid",
                "code_challenge": "x" * 43,
                "expires_at": expires_at,
            },
        )
        await oauth.insert_refresh(
            conn,
            {
                "token_hash": tag * 64,
                "grant_id": f"grant-{tag}",
                "app_id": app_id,
                "created_at": NOW,
                "expires_at": expires_at,
                "rotated_at": None,
                "access_jti": f"jti-{tag}",
                "access_expires_at": expires_at,
            },
        )
        await oauth.revoke_token(conn, f"jti-{tag}", app_id, expires_at, NOW)
        await oauth.use_assertion(conn, client_id, f"assertion-{tag}", expires_at)


async def _counts(db: Database) -> list[int]:
    async with db.read() as conn:
        return [
            (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in SWEPT
        ]


async def test_the_sweep_deletes_only_expired_rows(db: Database) -> None:
    """Expired rows go from every table; rows that are still live stay."""
    await _state(db, "a", PAST)
    await _state(db, "b", FUTURE)
    assert await _counts(db) == [2] * len(SWEPT)
    await housekeeping.purge_expired(db, FakeClock(NOW.timestamp()))
    assert await _counts(db) == [1] * len(SWEPT)
    async with db.read() as conn:
        left = (await conn.execute(select(auth_interactions.c.id))).scalars().all()
    assert left == ["interaction-b"]


def test_a_running_server_sweeps_on_its_interval(databases: Databases, tmp_path: Path) -> None:
    """The server starts the sweep: an expired row is gone within a few intervals."""
    settings = make_settings(tmp_path, databases.new(), oauth={"purge_interval_seconds": 0.05})
    running = start_server(settings)
    try:
        db = running.services.db
        running.run(_state(db, "a", PAST))
        deadline = time.monotonic() + 10
        while running.run(_counts(db)) != [0] * len(SWEPT):
            assert time.monotonic() < deadline, "the expired rows were never deleted"
            time.sleep(0.05)
    finally:
        running.stop()
