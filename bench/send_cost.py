"""What encryption adds to one send, below HTTP: the store's write with and without sealing.

    .venv/bin/python -m bench.send_cost --rounds 7 --sends 400
    .venv/bin/python -m bench.send_cost --database-url postgresql+asyncpg://postgres@127.0.0.1/x

Each arm is a transaction of ``messages.insert_message`` (what ``Messages.send`` runs
after its checks) on a database of its own: the envelope cipher as shipped (seal the
body, compute and store its blind-index terms) against a pass-through cipher (stored as
given, nothing indexed). Rounds alternate the arms; the result is the median over
rounds of each round's median microseconds per send. Far less noisy than the HTTP A/B
on a shared machine, and it isolates the part encryption changes.

The sealed arm's sends leave their blind-index terms pending on their rows; at the end
the search indexer files them all (``SearchIndexer.drain``, batches as configured), and
its time per message is reported beside: the work moved out of the send, which the
server still does, in batches, on the same core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bastion.app import database, secret_hasher
from bastion.chat.apps import create_app
from bastion.chat.indexer import SearchIndexer
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.core.settings import Settings
from bastion.store import migrate
from bastion.store.db import Database, create_engine
from bastion.store.repos import messages as repo
from bastion.store.tables import channels
from bench.common import drop_target, fresh_target
from bench.crypto_server import PlaintextCipher
from bench.sealed_corpus import TYPICAL, channel_row


async def _setup(settings: Settings, plaintext: bool) -> tuple[Database, str, str]:
    if plaintext:
        db = Database(create_engine(settings.database_url), cipher=PlaintextCipher())
    else:
        db = database(settings)
    await migrate.upgrade(db.engine)
    app = (await create_app(db, secret_hasher(settings), SystemClock(), name="bench")).app
    channel_id = new_id(Kind.CHANNEL)
    async with db.write() as conn:
        await conn.execute(insert(channels), [channel_row(app.id, channel_id)])
    return db, app.id, channel_id


async def _round(db: Database, app_id: str, channel_id: str, sends: int) -> float:
    """Median microseconds of one send's transaction over ``sends`` sends."""
    spent: list[float] = []
    for _ in range(sends):
        started = time.perf_counter()
        async with db.write() as conn:
            await repo.insert_message(
                conn,
                app_id,
                message_id=new_id(Kind.MESSAGE),
                channel_id=channel_id,
                author_id="usr_bench",
                parent_id=None,
                body=TYPICAL,
                mentions=(),
                client_msg_id=None,
                now=SystemClock().now(),
            )
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1e6


async def measure(work: Path, url: str | None, rounds: int, sends: int) -> dict[str, Any]:
    """Both arms, alternated ``rounds`` times."""
    arms: dict[str, tuple[Database, str, str]] = {}
    made: list[str | None] = []
    results: dict[str, list[float]] = {"sealed": [], "plaintext": []}
    try:
        for arm in results:
            made.append(fresh_database(url, arm))
            settings = Settings(
                server={"data_dir": work / arm},
                database={"url": made[-1]},
                auth={"argon2_time_cost": 1, "argon2_memory_kib": 1024},
            )
            arms[arm] = await _setup(settings, arm == "plaintext")
        for _ in range(rounds):
            for arm, (db, app_id, channel_id) in arms.items():
                results[arm].append(round(await _round(db, app_id, channel_id, sends), 1))
            print({arm: values[-1] for arm, values in results.items()}, flush=True)
        filed_us = await _filing_cost(arms["sealed"][0])
    finally:
        for db, _, _ in arms.values():
            await db.close()
        for database_url in made:
            drop_target(database_url)
    median = {arm: statistics.median(values) for arm, values in results.items()}
    added = median["sealed"] - median["plaintext"]
    return {
        "rounds": results,
        "median us": median,
        "encryption adds us": round(added, 1),
        "indexer us per message": filed_us,
    }


async def _filing_cost(db: Database) -> float:
    """Microseconds per message the indexer spends filing every pending message's terms."""
    started = time.perf_counter()
    filed = await SearchIndexer(db, Settings().encryption.index_batch).drain()
    return round((time.perf_counter() - started) / max(filed, 1) * 1e6, 1)


def fresh_database(url: str | None, tag: str) -> str | None:
    """None (SQLite in the data folder), or a new empty PostgreSQL database beside ``url``."""
    return None if url is None else fresh_target(url, Path(tempfile.gettempdir()), tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sends", type=int, default=400)
    parser.add_argument("--database-url", help="PostgreSQL: fresh databases beside this one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-send-cost-") as tmp:
        report = asyncio.run(measure(Path(tmp), args.database_url, args.rounds, args.sends))
    report["load"] = os.getloadavg()
    out = json.dumps(report, indent=2)
    print(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(out)


if __name__ == "__main__":
    main()
