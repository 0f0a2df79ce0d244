"""Migrations upgrade, downgrade and upgrade again on the backend under test."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, table

from bastion.app import database
from bastion.core.ids import Kind, new_id
from bastion.store import migrate
from bastion.store.db import Database, create_engine
from bastion.store.repos import logins
from bastion.store.tables import login_credentials, messages, metadata
from tests.conftest import Databases, make_settings, start_server
from tests.support.cli import BIN
from tests.support.logins import SECRET, legacy_login
from tests.support.messaging import reaction_url
from tests.support.raw import sql
from tests.support.tenants import new_tenant


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(databases: Databases) -> None:
    """Head creates every table; base removes them all; head again restores them."""
    url = databases.new()
    engine = create_engine(url)
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.is_current(engine)
        assert await _tables(url) == set(metadata.tables)
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
        assert await _tables(url) == set()
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_each_revision_steps_up_and_down(databases: Databases) -> None:
    """Every revision can be applied and reverted one step at a time."""
    url = databases.new()
    engine = create_engine(url)
    try:
        for revision in migrate.revisions():
            await migrate.upgrade(engine, revision)
            assert await migrate.current_revision(engine) == revision
        for _ in migrate.revisions():
            await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) is None
    finally:
        await engine.dispose()


async def test_models_match_the_migrations(databases: Databases) -> None:
    """Autogenerate finds nothing to add: the tables in code equal the migrated schema."""
    url = databases.new()
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def _stored(db: Database, user_id: str) -> str:
    query = select(login_credentials.c.totp_secret).where(login_credentials.c.user_id == user_id)
    async with db.read() as conn:
        return str((await conn.execute(query)).scalar_one())


async def test_the_migration_seals_plaintext_totp_secrets(
    databases: Databases, tmp_path: Path
) -> None:
    """0011 seals a secret stored in the clear, bound to its cell; downgrading opens it."""
    db = database(make_settings(tmp_path, databases.new()))
    app_id, user_id = new_id(Kind.APP), new_id(Kind.USER)
    try:
        await migrate.upgrade(db.engine, "0010")
        await legacy_login(db, app_id, user_id)
        async with db.read() as conn:  # the migration window: plaintext still reads
            assert await logins.totp_secret(conn, app_id, user_id) == SECRET
        await migrate.upgrade(db.engine)
        stored = await _stored(db, user_id)
        assert stored.startswith("e1.dek_")
        assert SECRET not in stored
        async with db.read() as conn:
            assert await logins.totp_secret(conn, app_id, user_id) == SECRET
        await migrate.downgrade(db.engine, "0010")
        assert await _stored(db, user_id) == SECRET
    finally:
        await db.close()


def test_0018_recounts_replies_without_the_deleted_ones(
    databases: Databases, tmp_path: Path
) -> None:
    """A root counted with its deleted replies (as before 0018) is recounted by 0018 to
    its live replies; roots without replies are untouched."""
    url = databases.new()
    running = start_server(make_settings(tmp_path, url))

    async def thread() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as http:
            tenant = new_tenant(running, http)
            alice, bob = await tenant.user("alice"), await tenant.user("bob")
            cid = (await tenant.channel(alice, [bob]))["id"]
            root = await tenant.send(alice, cid, "root")
            lone = await tenant.send(alice, cid, "no replies")
            replies = [await tenant.send(bob, cid, "re", parent_id=root["id"]) for _ in range(3)]
            gone = await http.delete(f"/v1/messages/{replies[0]['id']}", headers=bob.headers)
            assert gone.status_code == 204, gone.text
            return str(root["id"]), str(lone["id"])

    try:
        root, lone = asyncio.run(thread())
        # What the code before 0018 left: the deleted reply still counted.
        sql(running, "UPDATE messages SET reply_count = 3 WHERE id = :m", m=root)
    finally:
        running.stop()

    async def step() -> dict[str, int]:
        engine = create_engine(url)
        try:
            await migrate.downgrade(engine, "0017")
            await migrate.upgrade(engine, "0018")
            async with engine.connect() as conn:
                found = await conn.execute(
                    select(messages.c.id, messages.c.reply_count).where(
                        messages.c.id.in_([root, lone])
                    )
                )
                return {row[0]: row[1] for row in found}
        finally:
            await engine.dispose()

    assert asyncio.run(step()) == {root: 2, lone: 0}


async def test_the_migration_refuses_to_run_without_a_cipher(databases: Databases) -> None:
    """With plaintext secrets and no cipher on the connection, nothing changes."""
    url = databases.new()
    engine = create_engine(url)
    plain = Database(engine)
    app_id, user_id = new_id(Kind.APP), new_id(Kind.USER)
    try:
        await migrate.upgrade(engine, "0010")
        await legacy_login(plain, app_id, user_id)
        with pytest.raises(RuntimeError, match="column cipher"):
            await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == "0010"
        assert await _stored(plain, user_id) == SECRET
    finally:
        await plain.close()


def test_concurrent_migrations_take_turns(databases: Databases, tmp_path: Path) -> None:
    """Two `bastion migrate` started together on a fresh database both succeed, at head."""
    url = databases.new()
    runs = [
        subprocess.Popen(  # noqa: S603 - our own console script
            [str(BIN / "bastion"), "migrate"],
            env={
                **os.environ,
                "BASTION_SERVER__DATA_DIR": str(tmp_path / f"node{node}"),
                "BASTION_DATABASE__URL": url,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (1, 2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    head = migrate.head_revision()
    assert all(f"at revision {head}" in output for output in outputs), outputs

    async def current() -> str | None:
        engine = create_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(current()) == head


def _chat_history(url: str, data_dir: Path) -> None:
    """Two users, a channel, a message mentioning one of them and a reaction, made
    through the API on a server over ``url``."""
    running = start_server(make_settings(data_dir, url))

    async def converse() -> None:
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as http:
            tenant = new_tenant(running, http)
            alice, bob = await tenant.user("alice"), await tenant.user("bob")
            channel = await tenant.channel(alice, [bob])
            message = await tenant.send(alice, channel["id"], "hi @bob", mentions=[bob.id])
            reacted = await http.put(reaction_url(message["id"], "👍"), headers=bob.headers)
            assert reacted.status_code == 200, reacted.text

    try:
        asyncio.run(converse())
    finally:
        running.stop()


async def _row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            return {
                name: (
                    await conn.execute(select(func.count()).select_from(table(name)))
                ).scalar_one()
                for name in names
                if name != "alembic_version"
            }
    finally:
        await engine.dispose()


def test_each_downgrade_keeps_the_rows_of_the_tables_it_keeps(
    databases: Databases, tmp_path: Path
) -> None:
    """A step down drops its own tables and columns, never rows of other tables.

    On SQLite a column change copies the table and drops the original; with foreign keys
    enforced that drop would cascade to every child table (a message's reactions and
    mentions, an app's users).
    """
    url = databases.new()
    _chat_history(url, tmp_path)
    before = asyncio.run(_row_counts(url))
    assert before["reactions"] == 1

    async def step_down() -> str | None:
        engine = create_engine(url)
        try:
            await migrate.downgrade(engine, "-1")
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    while (revision := asyncio.run(step_down())) is not None:
        after = asyncio.run(_row_counts(url))
        kept = {name: before[name] for name in after if name in before}
        assert {name: after[name] for name in kept} == kept, f"down to {revision}"
        before = after


async def test_foreign_keys_are_enforced_again_after_a_migration(databases: Databases) -> None:
    """The connection a SQLite migration ran on goes back to the pool enforcing keys."""
    engine = create_engine(databases.new())
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                pytest.skip("foreign-key enforcement is a SQLite connection setting")
            enforced = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        assert enforced == 1
    finally:
        await engine.dispose()
