"""Encryption at rest: seal/unseal cost, its share of send latency, rotation and backup speed.

    .venv/bin/python -m bench.crypto --messages 1000000 --parts rotation --json r.json
    .venv/bin/python -m bench.crypto --database-url postgresql+asyncpg://postgres@127.0.0.1/postgres

Parts (``--parts``, all by default):

- latency: `bastion serve` as shipped against the same server with the column cipher
  replaced by a pass-through (bench/crypto_server.py), and optionally a server from
  another source tree (``--compare-src``), one connection, wrk p50, alternated rounds;
- cost: per-message seal, open and blind-index terms (warm data-key cache);
- rotation: `keys rewrap` (data keys/s) and `keys reencrypt` (rows/s), as the CLI runs them;
- backup: `backup create` / `backup restore` MB/s against `sqlite3 .backup`/`.restore`
  or `pg_dump`/`pg_restore`, alternated over rounds.

The last three share one database filled with ``--messages`` sealed messages
(bench/sealed_corpus.py). With ``--database-url`` every database is a fresh PostgreSQL
one made beside it, dropped at the end.
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

from bastion.app import column_cipher, database, key_source
from bastion.core.clock import SystemClock
from bastion.core.settings import Settings
from bastion.security.crypto import backups, rotation
from bastion.store import snapshot
from bastion.store.repos import sealed_rows
from bastion.store.sealing import Cell, Owner
from bench import sealed_corpus
from bench.common import (
    drop_target,
    free_port,
    fresh_target,
    init_app,
    machine,
    pinned,
    setup_chat,
    wait_ready,
    wrk,
)

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = '{{"text": "hello from the benchmark, a message of a typical length for chat"}}'
wrk.path = "/v1/channels/{channel}/messages"
"""
TYPICAL = sealed_corpus.TYPICAL


# -- 1. send latency with and without sealing ---------------------------------------------
def send_latency(
    work: Path, plaintext: bool, seconds: int, src: Path | None, database_url: str | None
) -> dict[str, Any]:
    """p50/p90 of sends on one connection, sealing on or off, from ``src`` if given.

    The server uses SQLite in ``work``, or a fresh database next to ``database_url``.
    """
    root = str(Path(__file__).resolve().parents[1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(work / "var"),
        "BASTION_SERVER__PUBLIC_URL": url,
        "BASTION_TRANSPORT__TLS": "false",
        "BASTION_RATELIMIT__ENABLED": "false",
        "BASTION_LOG__ACCESS_LOG": "false",
        "PYTHONPATH": root if src is None else f"{src.resolve()}:{root}",
    }
    if database_url is not None:
        env["BASTION_DATABASE__URL"] = fresh_target(database_url, work, "latency")
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
        drop_target(env.get("BASTION_DATABASE__URL"))


# -- shared: a database full of sealed messages -------------------------------------------
def settings_for(work: Path, url: str | None) -> Settings:
    """Settings for an in-process database (SQLite in ``work`` unless ``url``).

    The data-key cache keeps its 60 s default, as the CLI has it: re-encryption's row
    phase refreshes each key once a lifetime, and a short lifetime would time key
    unwraps instead of rows. Its settle phase (one lifetime of waiting) is not counted.
    """
    return Settings(
        server={"data_dir": work},
        database={"url": url},
        auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024},
    )


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
async def rotate(settings: Settings, batch: int) -> dict[str, float]:
    """Data keys per second of rewrap and rows per second of reencrypt, as the CLI runs them."""
    db = database(settings)
    keys = key_source(settings)
    clock = SystemClock()
    try:
        async with db.read() as conn:
            key_count = await _count(conn, "data_keys")
            rows = sum([await sealed_rows.count(conn, c) for c in sealed_rows.SEALED_COLUMNS])
        keys.rotate(clock.now())
        started = time.perf_counter()
        result = await rotation.rewrap(db, keys, batch=batch)
        rewrap_s = time.perf_counter() - started
        cipher = column_cipher(settings, clock)
        started = time.perf_counter()
        job = await rotation.Reencryption(db, cipher, clock, batch=batch).run()
        # The settle phase waits one data-key cache lifetime on purpose; it is not work.
        reencrypt_s = time.perf_counter() - started - cipher.cache_seconds
    finally:
        await db.close()
    return {
        "batch": batch,
        "data keys": key_count,
        "rewrapped": result.rewrapped,
        "rewrap s": round(rewrap_s, 2),
        "rewrap keys/s": round(result.rewrapped / rewrap_s, 1),
        "sealed rows": rows,
        "reencrypt rows": job.done,
        "reencrypt s": round(reencrypt_s, 1),
        "reencrypt rows/s": round(job.done / reencrypt_s, 1),
    }


async def _count(conn: Any, table: str) -> int:
    return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


# -- 4. backups ------------------------------------------------------------------------------
def backup_speed(settings: Settings, work: Path, rounds: int) -> dict[str, Any]:
    """Encrypted backup and restore against the plain tools, interleaved, same database.

    MB/s is the database's own size (the SQLite file, or ``pg_database_size``) over the
    wall time, for every arm, so the arms are comparable whatever their output size.
    """
    url = settings.database_url
    size_mb = _database_bytes(url) / 1e6
    keys = key_source(settings)
    times: dict[str, list[float]] = {arm: [] for arm in _ARMS}
    sizes: dict[str, float] = {}
    for index in range(rounds):
        for arm, seconds in _backup_round(url, keys, work / f"round{index}", sizes).items():
            times[arm].append(seconds)
        print({arm: round(seconds[-1], 2) for arm, seconds in times.items()}, flush=True)
    seconds = {arm: statistics.median(values) for arm, values in times.items()}
    return {
        "database MB": round(size_mb, 1),
        **{name: round(mb, 1) for name, mb in sizes.items()},
        "rounds": rounds,
        "median s": {arm: round(value, 2) for arm, value in seconds.items()},
        "MB/s": {arm: round(size_mb / value, 1) for arm, value in seconds.items()},
    }


_ARMS = ("plain snapshot", "bastion backup create", "plain restore", "bastion backup restore")


def _backup_round(url: str, keys: Any, work: Path, sizes: dict[str, float]) -> dict[str, float]:
    """One round of the four arms; seconds per arm (output sizes go into ``sizes``)."""
    work.mkdir()
    plain = work / "plain.snapshot"
    clock = time.perf_counter
    marks = [clock()]
    _plain_snapshot(url, plain)
    marks.append(clock())
    made = _encrypted_backup(url, keys, work / "backups")
    marks.append(clock())
    plain_target = fresh_target(url, work, "plain")
    marks.append(clock())
    _plain_restore(plain, plain_target)
    marks.append(clock())
    target = fresh_target(url, work, "restored")
    marks.append(clock())
    backups.restore(made.path, keys, target)
    marks.append(clock())
    sizes["plain snapshot file MB"] = plain.stat().st_size / 1e6
    sizes["bastion backup file MB"] = made.size / 1e6
    drop_target(plain_target)
    drop_target(target)
    # marks[2:4] and [4:6] bracket making the empty target, which is not timed.
    spans = (marks[1] - marks[0], marks[2] - marks[1], marks[4] - marks[3], marks[6] - marks[5])
    return dict(zip(_ARMS, spans, strict=True))


def _encrypted_backup(url: str, keys: Any, directory: Path) -> backups.BackupInfo:
    now = dt.datetime.now(dt.UTC)
    return backups.create(url, keys, directory, now=now, chunk_bytes=1_048_576, keep=1)


def _plain_snapshot(url: str, destination: Path) -> None:
    """What an operator would run by hand: ``sqlite3 .backup`` or ``pg_dump -Fc``."""
    if snapshot.backend_of(url) == "sqlite":
        command = ["sqlite3", str(snapshot.sqlite_path(url)), f".backup '{destination}'"]
    else:
        command = ["pg_dump", "--format=custom", "--file", str(destination)]
        command.append(snapshot.libpq_url(url))
    subprocess.run(command, check=True)


def _plain_restore(source: Path, url: str) -> None:
    """``sqlite3 .restore`` into a new file, or ``pg_restore`` into an empty database."""
    if snapshot.backend_of(url) == "sqlite":
        command = ["sqlite3", str(snapshot.sqlite_path(url)), f".restore '{source}'"]
    else:
        command = ["pg_restore", "--single-transaction", "--dbname", snapshot.libpq_url(url)]
        command.append(str(source))
    subprocess.run(command, check=True)


def _database_bytes(url: str) -> int:
    if snapshot.backend_of(url) == "sqlite":
        return snapshot.sqlite_path(url).stat().st_size
    query = "SELECT pg_database_size(current_database())"
    out = subprocess.run(
        ["psql", "-tA", "-c", query, snapshot.libpq_url(url)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def send_latency_ab(
    work: Path, rounds: int, seconds: int, compare: Path | None, database_url: str | None
) -> dict[str, Any]:
    """Part 1: the sealed and pass-through servers (and ``compare``'s), alternated per round."""
    arms: dict[str, tuple[bool, Path | None]] = {"sealed": (False, None)}
    if compare is not None:
        arms["sealed, --compare-src"] = (False, compare)
    arms["plaintext"] = (True, None)
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for index in range(rounds):
        for number, (arm, (plaintext, src)) in enumerate(arms.items()):
            run = work / f"arm{number}-{index}"
            run.mkdir()
            runs[arm].append(send_latency(run, plaintext, seconds, src, database_url))
            print(arm, runs[arm][-1], flush=True)
    p50 = {arm: statistics.median(r["p50"] for r in results) for arm, results in runs.items()}
    base = p50["plaintext"]
    return {
        "rounds": runs,
        "p50 ms": p50,
        "adds to p50": {a: round((v - base) / base, 4) for a, v in p50.items() if a != "plaintext"},
    }


PARTS = ("latency", "cost", "rotation", "backup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="A/B latency rounds")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="rewrap/reencrypt batch (CLI)")
    parser.add_argument("--backup-rounds", type=int, default=3)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    parser.add_argument(
        "--database-url", help="PostgreSQL: fresh databases are made next to this one"
    )
    parser.add_argument(
        "--compare-src", type=Path, help="another src/ tree (e.g. main's) as a third latency arm"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {"machine": machine(), "load before": os.getloadavg()}
    report["args"] = {k: str(v) for k, v in vars(args).items()}
    with tempfile.TemporaryDirectory(prefix="bastion-crypto-bench-") as tmp:
        work = Path(tmp)
        if "latency" in parts:
            report["send latency"] = send_latency_ab(
                work, args.rounds, args.seconds, args.compare_src, args.database_url
            )
        if parts & {"cost", "rotation", "backup"}:
            report.update(_corpus_parts(args, parts, work))
    report["load after"] = os.getloadavg()
    text_out = json.dumps(report, indent=2, default=str)
    print(text_out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text_out)


def _corpus_parts(args: argparse.Namespace, parts: set[str], work: Path) -> dict[str, Any]:
    """Parts 2-4 on one filled database (a fresh PostgreSQL one, dropped afterwards)."""
    corpus = None if args.database_url is None else fresh_target(args.database_url, work, "c")
    settings = settings_for(work / "data", corpus)
    report: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        report["fill"] = asyncio.run(_fill(settings, args))
        report["fill"]["s"] = round(time.perf_counter() - started, 1)
        if "cost" in parts:
            app_id = report["fill"]["app"]
            report["per message"] = asyncio.run(per_message(settings, app_id, 20_000))
            print(report["per message"], flush=True)
        if "backup" in parts:
            report["backup"] = backup_speed(settings, work, args.backup_rounds)
            print(report["backup"], flush=True)
        if "rotation" in parts:
            report["rotation"] = asyncio.run(rotate(settings, args.batch))
            print(report["rotation"], flush=True)
    finally:
        drop_target(corpus)
    return report


async def _fill(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    report = sealed_corpus.progress_printer(args.messages)
    app_id = await sealed_corpus.fill(settings, args.messages, args.channels, report=report)
    return {"app": app_id, "messages": args.messages, "channels": args.channels}


if __name__ == "__main__":
    main()
