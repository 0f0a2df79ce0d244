"""Audit log cost: append throughput, and the audit share of a message send's latency.

Runs on a fresh database (SQLite in a temporary folder, or a new database on the
PostgreSQL server named by ``--database-url``):

1. **Append throughput**: events emitted outside any transaction (one transaction
   each, as for a login failure) and events emitted inside transactions of 100 (all
   appended at the commit).
2. **Per-request cost**: message sends, one at a time, through the complete
   application, both in-process (ASGI, no network) and over HTTP to a uvicorn server
   on loopback. The time each send's transaction spends in the audit hooks (the
   ``data.change`` event and its hash-chained append) is timed next to the send.

Usage: ``.venv/bin/python -m bench.audit [--events 5000] [--sends 2000] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bastion.app import Bastion, secret_hasher
from bastion.chat.apps import NewApp, create_app
from bastion.core.clock import SystemClock
from bastion.core.settings import Settings
from bastion.http.deps import Services
from bastion.observe.events import Actor, Origin
from bastion.security.oauth import rfc8693
from bastion.store import migrate
from bastion.store.db import Transaction, TransactionHook, create_engine


class TimedHooks:
    """Runs the database's transaction hooks and records the time each commit spends in them."""

    def __init__(self, hooks: list[TransactionHook]) -> None:
        self.hooks = hooks
        self.seconds: list[float] = []

    async def before_commit(self, tx: Transaction) -> None:
        started = time.perf_counter()
        for hook in self.hooks:
            await hook.before_commit(tx)
        self.seconds.append(time.perf_counter() - started)

    async def after_rollback(self, tx: Transaction) -> None:
        for hook in self.hooks:
            await hook.after_rollback(tx)


def timed(services: Services) -> TimedHooks:
    """Wrap the database's hooks in a timer."""
    hooks = services.db._hooks
    wrapper = TimedHooks(list(hooks))
    hooks[:] = [wrapper]
    return wrapper


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def fresh_database(server_url: str | None, folder: Path) -> str:
    if server_url is None:
        return f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    name = f"bastion_bench_{int(time.time() * 1000)}"
    engine = create_engine(server_url)
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def settings_for(folder: Path, url: str, port: int = 8000) -> Settings:
    return Settings(
        server={"data_dir": folder, "port": port, "public_url": f"http://127.0.0.1:{port}"},
        database={"url": url},
        auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
        log={"level": "warning", "access_log": False},
        monitor={"alerts_enabled": False},
        # Rate limiting has its own benchmark; here it would only cap the sends.
        ratelimit={"enabled": False},
        transport={"tls": False},
    )


async def migrated(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    await migrate.upgrade(engine)
    await engine.dispose()


@contextlib.asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[tuple[Bastion, httpx.AsyncClient]]:
    app = Bastion(settings)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            yield app, http


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[tuple[Bastion, asyncio.AbstractEventLoop]]:
    """uvicorn on loopback in a thread of its own (its own event loop)."""
    app = Bastion(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),))
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield app, loop
    finally:
        server.should_exit = True
        thread.join()
        loop.close()


async def append_throughput(services: Services, events: int) -> dict[str, float]:
    actor, origin = Actor(app_id="app_bench", subject="usr_bench"), Origin(ip="192.0.2.1")
    started = time.perf_counter()
    for _ in range(events):
        await services.events.emit("auth.login", "failure", actor=actor, origin=origin)
    alone = events / (time.perf_counter() - started)
    batch, started = 100, time.perf_counter()
    for _ in range(events // batch):
        async with services.db.write():
            for _ in range(batch):
                await services.events.emit("auth.login", "failure", actor=actor, origin=origin)
    batched = (events // batch) * batch / (time.perf_counter() - started)
    return {"appends_per_s_own_transaction": alone, "appends_per_s_100_per_transaction": batched}


async def sends(http: httpx.AsyncClient, tenant: NewApp, count: int) -> list[float]:
    """Set up a user and a channel, then time ``count`` sends one after the other."""
    auth = (tenant.client.id, tenant.client_secret)
    grant = {"grant_type": "client_credentials"}
    backend = (await http.post("/oauth/token", data=grant, auth=auth)).json()["access_token"]
    made = await http.post(
        "/v1/users",
        json={"external_id": "a", "display_name": "a"},
        headers={"Authorization": f"Bearer {backend}"},
    )
    exchange = {
        "grant_type": rfc8693.GRANT_TYPE,
        "subject_token": made.json()["id"],
        "subject_token_type": rfc8693.USER_ID_TYPE,
    }
    token = (await http.post("/oauth/token", data=exchange, auth=auth)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    channel = (
        await http.post(
            "/v1/channels", json={"type": "group", "name": "b", "members": []}, headers=headers
        )
    ).json()["id"]
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = await http.post(
            f"/v1/channels/{channel}/messages", json={"text": f"message {i}"}, headers=headers
        )
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 201, response.text
    return latencies


def summary(latencies: list[float], audit: list[float]) -> dict[str, float]:
    result = {
        "send_p50_ms": percentile(latencies, 0.5) * 1000,
        "send_p99_ms": percentile(latencies, 0.99) * 1000,
        "audit_p50_ms": percentile(audit, 0.5) * 1000,
        "audit_p99_ms": percentile(audit, 0.99) * 1000,
        "audit_mean_ms": statistics.fmean(audit) * 1000,
    }
    result["audit_share_p50"] = result["audit_p50_ms"] / result["send_p50_ms"]
    result["audit_share_p99"] = result["audit_p99_ms"] / result["send_p99_ms"]
    return result


async def run_in_process(settings: Settings, events: int, count: int) -> dict[str, Any]:
    async with in_process(settings) as (app, http):
        services: Services = app.api.state.services
        result: dict[str, Any] = await append_throughput(services, events)
        tenant = await create_app(services.db, secret_hasher(settings), SystemClock(), name="b")
        timer = timed(services)
        latencies = await sends(http, tenant, count)
        result["in_process"] = summary(latencies, timer.seconds[-count:])
    return result


async def run_over_http(settings: Settings, count: int) -> dict[str, float]:
    with served(settings) as (app, loop):
        services: Services = app.api.state.services
        create = create_app(services.db, secret_hasher(settings), SystemClock(), name="b")
        tenant = asyncio.run_coroutine_threadsafe(create, loop).result()
        timer = timed(services)
        base = f"http://127.0.0.1:{settings.server.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            latencies = await sends(http, tenant, count)
    return summary(latencies, timer.seconds[-count:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        url = await fresh_database(args.database_url, Path(first))
        settings = settings_for(Path(first), url)
        await migrated(settings)
        results: dict[str, Any] = {"backend": make_url(url).get_backend_name()}
        results.update(await run_in_process(settings, args.events, args.sends))
        url = await fresh_database(args.database_url, Path(second))
        settings = settings_for(Path(second), url, free_port())
        await migrated(settings)
        results["over_http"] = await run_over_http(settings, args.sends)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:])), indent=2))
