"""Rate-limiter overhead per request: limiting off, memory store, Redis store, one run.

Drives the complete ASGI application in process (every guard, routing, the route),
so the difference between the modes is the limiter's own cost, not the network's:
``GET /healthz`` with a user's bearer token from one of 1,000 users, each behind its
own address (a trusted-proxy ``X-Forwarded-For``), taken round-robin. The limiter
identifies the caller and counts the request against the default policies (``ip`` and
``reads``: four counters per request), at ``ratelimit.scale = 10`` so that nothing is
refused. The three modes run side by side and take turns request by request. Prints a JSON
summary.

    .venv/bin/python -m bench.ratelimit_overhead --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bastion.app import Bastion, create_app, secret_hasher
from bastion.chat.apps import create_app as create_tenant
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.core.settings import Settings
from bastion.store import migrate
from bastion.store.db import create_engine
from bench.common import machine

MODES = {
    "off": {"enabled": False},
    "memory": {"storage_url": "memory://", "scale": 10.0},
    "redis": {"storage_url": "redis://127.0.0.1:6379/0", "scale": 10.0},
}


def _settings(data: Path, mode: str) -> Settings:
    return Settings(
        server={"data_dir": data},
        auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
        log={"level": "warning", "access_log": False},
        # Shedding off: setting up one mode stalls the shared loop, which is not overload.
        ratelimit={
            **MODES[mode],
            "key_prefix": f"bench{secrets.token_hex(4)}",
            "shed_loop_lag_ms": 60_000.0,
        },
    )


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[Bastion]:
    app = create_app(settings)
    engine = create_engine(settings.database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    async with app.api.router.lifespan_context(app.api):
        yield app


USERS = 1000


async def _callers(app: Bastion) -> list[list[tuple[bytes, bytes]]]:
    """Request headers of 1,000 users, each with a token and its own address."""
    services = app.api.state.services
    tenant = await create_tenant(
        services.db, secret_hasher(services.settings), SystemClock(), name="bench"
    )
    callers = []
    for index in range(USERS):
        issued = services.tokens.issue(
            app_id=tenant.app.id,
            client_id=tenant.client.id,
            subject=new_id(Kind.USER),
            scopes=frozenset({"chat:read"}),
            ttl=3600,
        )
        callers.append(
            [
                (b"host", b"bench"),
                (b"authorization", f"Bearer {issued.token}".encode()),
                (b"x-forwarded-for", f"10.1.{index // 256}.{index % 256}".encode()),
            ]
        )
    return callers


async def _one(app: Bastion, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _summary(samples: list[float]) -> dict[str, float]:
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p90_us": round(samples[int(len(samples) * 0.9)], 1),
        "p99_us": round(samples[int(len(samples) * 0.99)], 1),
        "mean_us": round(statistics.fmean(samples), 1),
    }


async def _measure(modes: list[str], requests: int) -> dict[str, dict[str, float]]:
    """Every mode's app runs at once; requests alternate between them, so drift in the
    machine's speed hits every mode alike."""
    with tempfile.TemporaryDirectory(prefix="bastion-rl-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            apps, callers = {}, {}
            for mode in modes:
                (Path(tmp) / mode).mkdir()
                settings = _settings(Path(tmp) / mode, mode)
                apps[mode] = await stack.enter_async_context(_running(settings))
                callers[mode] = await _callers(apps[mode])
                for headers in callers[mode]:  # warm up the token cache and the store
                    assert await _one(apps[mode], headers) == 200
            samples: dict[str, list[float]] = {mode: [] for mode in modes}
            for index in range(requests):
                for mode in modes:
                    headers = callers[mode][index % USERS]
                    start = time.perf_counter_ns()
                    status = await _one(apps[mode], headers)
                    samples[mode].append((time.perf_counter_ns() - start) / 1000)
                    assert status == 200, (mode, status)
    return {mode: _summary(values) for mode, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--modes", default="off,memory,redis")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    results = asyncio.run(_measure(args.modes.split(","), args.requests))
    base = results.get("off", {}).get("p50_us")
    if base is not None:
        for row in results.values():
            row["added_p50_us"] = round(row["p50_us"] - base, 1)
    print(
        json.dumps({"machine": machine(), "requests": args.requests, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
