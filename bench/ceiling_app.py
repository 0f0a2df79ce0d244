"""The naive ceiling: a bare FastAPI endpoint that verifies the same JWT and inserts one row.

Run by send_throughput.py under the same uvicorn settings as Bastion. Configured by
environment: BENCH_DB (SQLite file), BENCH_KEYS (Bastion's key folder), BENCH_ISSUER.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from fastapi import FastAPI, Header, HTTPException
from joserfc import jwt
from joserfc.errors import JoseError
from pydantic import BaseModel, Field

from bastion.security.keys import SigningKeyStore

KEYS = SigningKeyStore(Path(os.environ["BENCH_KEYS"]), None).load_or_create("ES256")
ISSUER = os.environ["BENCH_ISSUER"]
STATE: dict[str, aiosqlite.Connection] = {}


class Body(BaseModel):
    """The same body shape as a Bastion send."""

    text: str = Field(max_length=4000)
    client_msg_id: str | None = Field(None, max_length=64)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Open one connection, WAL, synchronous=NORMAL, as Bastion does."""
    db = await aiosqlite.connect(os.environ["BENCH_DB"])
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS bench_ceiling (id INTEGER PRIMARY KEY, sub TEXT, "
        "channel TEXT, body TEXT, created REAL)"
    )
    STATE["db"] = db
    yield
    await db.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/channels/{channel_id}/messages", status_code=201)
async def send(channel_id: str, body: Body, authorization: str = Header()) -> dict[str, str]:
    """Verify the bearer token (signature, typ, iss, aud, exp) and insert one row."""
    try:
        token = jwt.decode(
            authorization.removeprefix("Bearer "), KEYS.verification, algorithms=["ES256"]
        )
    except JoseError as exc:
        raise HTTPException(401) from exc
    claims = token.claims
    now = time.time()
    if token.header.get("typ") != "at+jwt" or claims["iss"] != ISSUER or claims["aud"] != ISSUER:
        raise HTTPException(401)
    if claims["exp"] <= now:
        raise HTTPException(401)
    db = STATE["db"]
    await db.execute(
        "INSERT INTO bench_ceiling (sub, channel, body, created) VALUES (?, ?, ?, ?)",
        (claims["sub"], channel_id, body.text, now),
    )
    await db.commit()
    return {"channel_id": channel_id, "text": body.text}
