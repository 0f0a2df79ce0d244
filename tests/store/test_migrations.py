"""Migrations upgrade, downgrade and upgrade again on the backend under test."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bastion.store import migrate
from bastion.store.db import create_engine
from bastion.store.tables import metadata
from tests.conftest import Databases


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
