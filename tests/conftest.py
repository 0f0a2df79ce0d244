"""Shared fixtures: one real server per session, a fresh app (tenant) per test.

The database is SQLite in a temporary folder unless ``--database-url`` or
``BASTION_TEST_DATABASE_URL`` names a PostgreSQL server, in which case a fresh
database is created on it for the session and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.observe.events import MemorySink
from bastion.store import migrate
from bastion.store.db import create_engine
from tests.support.server import ServerThread, free_port
from tests.support.tenants import Tenant, new_tenant

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--database-url``: run the suite against this database server."""
    parser.addoption(
        "--database-url",
        default=os.environ.get("BASTION_TEST_DATABASE_URL"),
        help="SQLAlchemy URL of a PostgreSQL server to test against (default: SQLite).",
    )


async def _admin_async(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


def _admin(url: str, statement: str) -> None:
    """Run one statement on its own loop in a thread: callable from sync and async code."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin_async(url, statement)).result()


class Databases:
    """Makes throwaway databases on the selected backend."""

    def __init__(self, server_url: str | None, tmp: Path) -> None:
        self.server_url = server_url
        self.tmp = tmp
        self.created: list[str] = []

    @property
    def backend(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return "postgresql" if self.server_url else "sqlite"

    def new(self) -> str:
        """The URL of a new, empty database."""
        name = f"bastion_test_{secrets.token_hex(6)}"
        if self.server_url is None:
            return f"sqlite+aiosqlite:///{self.tmp / name}.db"
        _admin(self.server_url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def admin(self, statement: str) -> None:
        """Run one statement on the PostgreSQL server as its administrator."""
        assert self.server_url is not None, "PostgreSQL only"
        _admin(self.server_url, statement)

    def drop_all(self) -> None:
        """Drop every database this session created."""
        assert self.server_url is not None or not self.created
        for name in self.created:
            statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            _admin(self.server_url or "", statement)


@pytest.fixture(scope="session")
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    """The database backend under test."""
    dbs = Databases(
        request.config.getoption("--database-url") or None, tmp_path_factory.mktemp("db")
    )
    yield dbs
    dbs.drop_all()


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Test settings: fast argon2, a free port, high rate limits, the rest at its default."""
    port = free_port()
    sections: dict[str, Any] = {
        "server": {"data_dir": data_dir, "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "database": {"url": database_url},
        "auth": dict(FAST_ARGON2),
        "log": {"level": "warning", "access_log": False},
        # Limits stay on, at a scale no functional test reaches: every test user shares
        # 127.0.0.1 and sends faster than people do. tests/security/ratelimit runs at 1.
        # Nor may a busy CI machine make the functional tests' server shed load.
        "ratelimit": {
            "scale": 1000.0,
            "shed_loop_lag_ms": 60_000.0,
            "shed_latency_ms": 60_000.0,
            "shed_in_flight": 100_000,
        },
        # Plain HTTP keeps the shared test server simple; tests/security/guard covers HTTPS.
        "transport": {"tls": False},
        # Tests send malformed requests by the hundred from one address; blocking has
        # its own server in tests/security/guard/test_strict_server.py.
        "validation": {"malformed_threshold": 100_000},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return Settings(**sections)


def start_server(settings: Settings, clock: Clock | None = None) -> ServerThread:
    """Migrate the database and start a server on it."""

    async def upgrade() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    server = ServerThread(settings, clock)
    server.start()
    return server


@pytest.fixture(scope="session")
def server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """One real Bastion server for the whole session."""
    settings = make_settings(
        tmp_path_factory.mktemp("data"), databases.new(), realtime={"heartbeat_seconds": 2.0}
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the session's server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def tenant(server: ServerThread, http: httpx.AsyncClient) -> Tenant:
    """A fresh app on the session's server: tests never see each other's data."""
    return new_tenant(server, http)


@pytest.fixture
def other_tenant(server: ServerThread, http: httpx.AsyncClient) -> Tenant:
    """A second, unrelated app (for cross-tenant checks)."""
    return new_tenant(server, http, name="other app")


@pytest.fixture(scope="session")
def events(server: ServerThread) -> MemorySink:
    """Every security event the session's server emits after first use (filter by app)."""
    memory = MemorySink()
    server.services.events.add_sink(memory)
    return memory
