"""Encryption at rest: seal/unseal cost, its share of send latency, rotation and backup speed.

    .venv/bin/python -m bench.crypto --messages 100000 --json bench/results/crypto.json
    .venv/bin/python -m bench.crypto --database-url postgresql+asyncpg://postgres@127.0.0.1/x

1. Send latency A/B: `bastion serve` as shipped against the same server with the column
   cipher replaced by a pass-through (bench/crypto_server.py), one connection, wrk p50.
2. Per-message cost of seal, open and blind-index terms (warm data-key cache).
3. `keys rewrap` (data keys/s) and `keys reencrypt` (rows/s) over N messages.
4. `backup create` / `backup restore` MB/s against the plain SQLite online backup API
   (what `sqlite3 .backup` uses) or plain `pg_dump`/`pg_restore`, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bastion.app import column_cipher, database, keyring, secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.core.settings import Settings
from bastion.security.crypto import backups, rotation
from bastion.store import migrate, snapshot
from bastion.store.repos import messages as message_repo
from bastion.store.sealing import Cell, Owner
from bench.common import free_port, init_app, machine, pinned, setup_chat, wait_ready, wrk

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = '{{"text": "hello from the benchmark, a message of a typical length for chat"}}'
wrk.path = "/v1/channels/{channel}/messages"
"""
TYPICAL = "hello from the benchmark, a message of a typical length for chat"


# -- 1. send latency with and without sealing ---------------------------------------------
def send_latency(work: Path, plaintext: bool, seconds: int) -> dict[str, Any]:
    """p50/p90 of sends on one connection, sealing on or off."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(work / "var"),
        "BASTION_SERVER__PUBLIC_URL": url,
        "BASTION_TRANSPORT__TLS": "false",
        "BASTION_RATELIMIT__ENABLED": "false",
        "BASTION_LOG__ACCESS_LOG": "false",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    argv = [sys.executable, "-m", "bench.crypto_server"]
    argv += ["--plaintext"] if plaintext else []
    argv += ["serve", "--port", str(port)]
    log = (work / "server.log").open("ab")
    process = subprocess.Popen(pinned(1, argv), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url)
        chat = setup_chat(url, init_app(env), members=2)
        script = work / "send.lua"
        script.write_text(LUA.format(token=chat.users[0][1], channel=chat.channel_id))
        wrk(url, script, core=0, connections=1, seconds=2, env=env)
        return wrk(url, script, core=0, connections=1, seconds=seconds, env=env)
    finally:
        process.terminate()
        process.wait(timeout=20)


# -- shared: a database full of sealed messages -------------------------------------------
def settings_for(work: Path, url: str | None) -> Settings:
    """Settings for an in-process database (SQLite in ``work`` unless ``url``)."""
    return Settings(
        server={"data_dir": work},
        database={"url": url},
        encryption={"dek_cache_seconds": 0.2},
        auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024},
    )


async def fill(settings: Settings, messages: int, channels: int) -> str:
    """Create one app, ``channels`` channels and ``messages`` sealed messages; return app id."""
    db = database(settings)
    try:
        await migrate.upgrade(db.engine)
        app = (await create_app(db, secret_hasher(settings), SystemClock(), name="bench")).app
        now = SystemClock().now()
        channel_ids = [new_id(Kind.CHANNEL) for _ in range(channels)]
        async with db.write() as conn:
            for channel_id in channel_ids:
                await conn.execute(
                    text(
                        "INSERT INTO channels (id, app_id, type, name, created_by, member_count, "
                        "activity_at, archived, created_at, updated_at, version) VALUES "
                        "(:id, :app, 'group', 'bench', 'usr_bench', 0, :now, false, :now, :now, 1)"
                    ),
                    {"id": channel_id, "app": app.id, "now": now},
                )
        batch = 1000
        for start in range(0, messages, batch):
            async with db.write() as conn:
                for index in range(start, min(start + batch, messages)):
                    await message_repo.insert_message(
                        conn,
                        app.id,
                        message_id=new_id(Kind.MESSAGE),
                        channel_id=channel_ids[index % channels],
                        author_id="usr_bench",
                        parent_id=None,
                        body=f"{TYPICAL} number {index}",
                        mentions=(),
                        client_msg_id=None,
                        now=now,
                    )
        return app.id
    finally:
        await db.close()


# -- 2. per-message cost -------------------------------------------------------------------
async def per_message(settings: Settings, app_id: str, rounds: int) -> dict[str, float]:
    """Microseconds per seal, open and terms, data keys cached."""
    db = database(settings)
    cipher = column_cipher(settings, SystemClock())
    cipher.cache_seconds = 3600
    results: dict[str, float] = {}
    try:
        async with db.write() as conn:
            owner = Owner("channel", "ch_bench")
            for label, body in (("typical", TYPICAL), ("4000 chars", "word " * 800)):
                cell = Cell(app_id, "messages", "body", "msg_bench")
                sealed = await cipher.seal(conn, cell, owner, body)
                await cipher.terms(conn, app_id, "ch_bench", body)
                for name, call in (
                    ("seal", lambda b=body, c=cell: cipher.seal(conn, c, owner, b)),
                    ("open", lambda s=sealed, c=cell: cipher.open(conn, c, s)),
                    ("terms", lambda b=body: cipher.terms(conn, app_id, "ch_bench", b)),
                ):
                    started = time.perf_counter()
                    for _ in range(rounds):
                        await call()
                    results[f"{name} ({label}) us"] = round(
                        (time.perf_counter() - started) / rounds * 1e6, 2
                    )
    finally:
        await db.close()
    return results


# -- 3. rewrap and reencrypt ---------------------------------------------------------------
async def rotate(settings: Settings, messages: int) -> dict[str, float]:
    """Rows (and data keys) per second of rewrap and reencrypt."""
    db = database(settings)
    ring = keyring(settings)
    clock = SystemClock()
    try:
        async with db.read() as conn:
            keys = int((await conn.execute(text("SELECT count(*) FROM data_keys"))).scalar_one())
        ring.rotate(clock.now())
        started = time.perf_counter()
        result = await rotation.rewrap(db, ring, batch=1000)
        rewrap_s = time.perf_counter() - started
        cipher = column_cipher(settings, clock)
        started = time.perf_counter()
        job = await rotation.Reencryption(db, cipher, clock, batch=1000).run()
        reencrypt_s = time.perf_counter() - started - cipher.cache_seconds
    finally:
        await db.close()
    return {
        "data keys": keys,
        "rewrapped": result.rewrapped,
        "rewrap keys/s": round(result.rewrapped / rewrap_s, 1),
        "reencrypt rows": job.done,
        "reencrypt rows/s": round(messages / reencrypt_s, 1),
        "reencrypt s": round(reencrypt_s, 1),
    }


# -- 4. backups ------------------------------------------------------------------------------
def backup_speed(settings: Settings, work: Path) -> dict[str, float]:
    """Encrypted backup and restore MB/s against the plain tool, same database, same run."""
    url = settings.database_url
    plain = work / "plain.snapshot"
    started = time.perf_counter()
    snapshot.snapshot(url, plain)
    plain_s = time.perf_counter() - started
    size_mb = plain.stat().st_size / 1e6
    ring = keyring(settings)
    started = time.perf_counter()
    info = backups.create(
        url, ring, work / "backups", now=dt.datetime.now(dt.UTC), chunk_bytes=1_048_576, keep=2
    )
    create_s = time.perf_counter() - started
    target = _fresh_target(url, work)
    started = time.perf_counter()
    backups.restore(info.path, ring, target)
    restore_s = time.perf_counter() - started
    plain_target = _fresh_target(url, work, "plain")
    started = time.perf_counter()
    snapshot.restore(plain, plain_target)
    plain_restore_s = time.perf_counter() - started
    return {
        "database MB": round(size_mb, 1),
        "backup file MB": round(info.size / 1e6, 1),
        "plain snapshot MB/s": round(size_mb / plain_s, 1),
        "encrypted backup MB/s": round(size_mb / create_s, 1),
        "plain restore MB/s": round(size_mb / plain_restore_s, 1),
        "encrypted restore MB/s": round(size_mb / restore_s, 1),
    }


def _fresh_target(url: str, work: Path, tag: str = "restored") -> str:
    if snapshot.backend_of(url) == "sqlite":
        return f"sqlite+aiosqlite:///{work / (tag + '.db')}"
    name = f"bench_{tag}_{new_id(Kind.REQUEST)[-8:].lower()}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="A/B latency rounds")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", help="PostgreSQL database for parts 3 and 4")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine()}
    report["args"] = {k: str(v) for k, v in vars(args).items()}
    with tempfile.TemporaryDirectory(prefix="bastion-crypto-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_latency:
            arms: dict[str, list[dict[str, Any]]] = {"sealed": [], "plaintext": []}
            for index in range(args.rounds):
                for arm, runs in arms.items():
                    run = work / f"{arm}{index}"
                    run.mkdir()
                    runs.append(send_latency(run, arm == "plaintext", args.seconds))
                    print(arm, runs[-1], flush=True)
            p50 = {arm: statistics.median(r["p50"] for r in runs) for arm, runs in arms.items()}
            report["send latency"] = {
                "rounds": arms,
                "p50 ms": p50,
                "sealing share of p50": round(
                    (p50["sealed"] - p50["plaintext"]) / p50["sealed"], 4
                ),
            }
        settings = settings_for(work / "data", args.database_url)
        app_id = asyncio.run(fill(settings, args.messages, args.channels))
        report["per message"] = asyncio.run(per_message(settings, app_id, 20_000))
        print(report["per message"], flush=True)
        report["rotation"] = asyncio.run(rotate(settings, args.messages))
        print(report["rotation"], flush=True)
        report["backup"] = backup_speed(settings, work)
        print(report["backup"], flush=True)
    text_out = json.dumps(report, indent=2, default=str)
    print(text_out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text_out)


if __name__ == "__main__":
    main()
