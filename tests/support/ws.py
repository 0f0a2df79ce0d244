"""A small WebSocket client for the tests, on the ``websockets`` library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class Socket:
    """An authenticated socket with helpers to wait for particular frames."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ready: dict[str, Any] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one JSON frame."""
        await self.connection.send(json.dumps(frame))

    async def next(self, wait: float = 5.0) -> dict[str, Any]:
        """The next frame, skipping heartbeat pings."""
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), wait)
            frame: dict[str, Any] = json.loads(raw)
            if frame.get("type") != "ping":
                return frame

    async def expect(self, type_: str, wait: float = 5.0) -> dict[str, Any]:
        """Wait for a frame of ``type_``, skipping others."""
        async with asyncio.timeout(wait):
            while True:
                frame = await self.next(wait)
                if frame["type"] == type_:
                    return frame

    async def silent(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """Everything but pings received within ``seconds`` (expected: nothing)."""
        frames = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frames.append(await self.next(seconds))
        except TimeoutError:
            pass
        return frames


@asynccontextmanager
async def socket(
    url: str, token: str | None, *, via: str = "header", headers: dict[str, str] | None = None
) -> AsyncIterator[Socket]:
    """Connect (with ``headers``) and authenticate by header or by first frame; yields
    after ``ready``."""
    sent = dict(headers or {})
    if token and via == "header":
        sent["Authorization"] = f"Bearer {token}"
    async with connect(url, additional_headers=sent, open_timeout=5) as connection:
        sock = Socket(connection)
        if token and via == "frame":
            await sock.send({"type": "auth", "token": token})
        sock.ready = await sock.expect("ready")
        yield sock


async def closed(
    connection: ClientConnection, within: float = 5.0
) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: its close code and reason, and the frames before."""
    frames: list[dict[str, Any]] = []
    closing: ConnectionClosed | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                frames.append(json.loads(await connection.recv()))
    except ConnectionClosed as exc:
        closing = exc
    assert closing is not None
    assert closing.rcvd is not None, "the server dropped the connection without a close frame"
    return closing.rcvd.code, closing.rcvd.reason, frames
