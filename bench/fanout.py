"""Fan-out latency: time from a send to its arrival on every subscriber's WebSocket.

Bastion runs pinned to core 1. The subscribers (1, 100, 1,000 sockets, each a different
member of one channel) and the sender live in this process on core 0. The subscriber
side is a minimal WebSocket reader that timestamps a frame when its bytes arrive, so
client-side parsing does not queue up behind a thousand sockets.

After the sockets connect, ``--warmup`` messages are sent and not measured (``0``
measures from the first). The sockets answer the server's heartbeat pings, so a run
can be long: a p99 over 100 messages is decided by a single stalled message (a full
pass of Python's cyclic garbage collector, say), over 1,000 by ten.

    .venv/bin/python -m bench.fanout --subscribers 1,100,1000 --messages 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import init_app, machine, setup_chat, start_bastion

MARKER = b'"type":"message.new"'
PING = b'{"type":"ping"}'
PONG = b'{"type":"pong"}'


def client_frame(payload: bytes) -> bytes:
    """A masked WebSocket text frame (clients must mask theirs) of a short payload."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


class Tally:
    """Counts first arrivals and wakes the sender once every subscriber has one."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.done = asyncio.Event()

    def reset(self, expected: int) -> None:
        """Start waiting for ``expected`` arrivals."""
        self.expected, self.count = expected, 0
        self.done.clear()

    def arrived(self) -> None:
        """One more subscriber received the message."""
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


class Subscriber(asyncio.Protocol):
    """Reads server frames and records when a message.new frame's bytes arrive;
    answers the server's heartbeat pings, so a long run keeps its sockets."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("a TCP connection has a full transport")
        self.transport = transport

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.upgraded = asyncio.get_running_loop().create_future()
        self.arrivals: list[float] = []
        self.handshake_done = False

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.handshake_done:
            self.buffer += data
            if b"\r\n\r\n" in self.buffer:
                head, _, rest = self.buffer.partition(b"\r\n\r\n")
                self.handshake_done = True
                self.upgraded.set_result(head.startswith(b"HTTP/1.1 101"))
                self.buffer = rest
            return
        # Keep a short tail: the marker may straddle two reads.
        window = self.buffer[-len(MARKER) :] + data
        self.buffer = data[-len(MARKER) :]
        if MARKER in window:
            self.arrivals.append(now)
            self.tally.arrived()
        if PING in window:
            self.transport.write(client_frame(PONG))


async def subscribe(host: str, port: int, token: str, tally: Tally) -> Subscriber:
    """Open one authenticated socket and wait for the upgrade."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    transport, protocol = await loop.create_connection(lambda: Subscriber(tally), host, port)
    request = (
        f"GET /v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    transport.write(request.encode())
    if not await asyncio.wait_for(protocol.upgraded, 10):
        raise RuntimeError("upgrade refused")
    return protocol


class Sender:
    """A bare HTTP/1.1 keep-alive client: the send costs the client almost nothing."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str
    ) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def open(cls, host: str, port: int, token: str, channel_id: str) -> Sender:
        """Connect to the server."""
        reader, writer = await asyncio.open_connection(host, port)
        head = (
            f"POST /v1/channels/{channel_id}/messages HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        )
        return cls(reader, writer, head)

    async def send(self, text: str) -> None:
        """POST one message and read the whole response."""
        body = json.dumps({"text": text}).encode()
        self.writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = await self.reader.readline()
        if b" 201 " not in status:
            raise RuntimeError(status.decode(errors="replace"))
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()


async def run_case(
    url: str,
    users: list[tuple[str, str]],
    channel_id: str,
    count: int,
    messages: int,
    gap: float,
    warmup: int,
) -> dict[str, Any]:
    """Connect ``count`` subscribers, send ``warmup`` messages unmeasured, then measure
    ``messages`` messages sent one at a time."""
    host, port = url.removeprefix("http://").split(":")
    tally = Tally()
    subscribers = []
    for index in range(1, count + 1):
        subscribers.append(await subscribe(host, int(port), users[index][1], tally))
    await asyncio.sleep(1.0)  # let every socket finish its subscription
    latencies: list[float] = []
    last: list[float] = []
    sender = await Sender.open(host, int(port), users[0][1], channel_id)
    try:
        for number in range(warmup + messages):
            got = await _fan_out(sender, subscribers, tally, f"fan-out {number}")
            if number >= warmup:
                latencies.extend(got)
                last.append(max(got))
            await asyncio.sleep(gap)
    finally:
        sender.close()
    for sub in subscribers:
        sub.transport.close()
    return {
        "subscribers": count,
        "messages": messages,
        "warmup": warmup,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_pct(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "last_subscriber_p50_ms": round(statistics.median(last), 2),
        "last_subscriber_p99_ms": round(_pct(last, 99), 2),
    }


async def _fan_out(
    sender: Sender, subscribers: list[Subscriber], tally: Tally, text: str
) -> list[float]:
    """Send one message; each subscriber's milliseconds from the send to its arrival."""
    for sub in subscribers:
        sub.arrivals.clear()
    tally.reset(len(subscribers))
    started = time.perf_counter()
    await sender.send(text)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.done.wait(), 5)
    got = [(s.arrivals[0] - started) * 1000 for s in subscribers if s.arrivals]
    if len(got) != len(subscribers):
        raise RuntimeError(f"only {len(got)} of {len(subscribers)} subscribers got {text!r}")
    return got


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1,100,1000")
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between sends")
    parser.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="messages sent, unmeasured, after the sockets connect (0: measure from the start)",
    )
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args()
    counts = [int(c) for c in args.subscribers.split(",")]
    os.sched_setaffinity(0, {0})
    # Cheap client-secret hashing only to create the 1,000 users' tokens quickly.
    env = {
        "BASTION_LOG__ACCESS_LOG": "false",
        "BASTION_AUTH__ARGON2_TIME_COST": "1",
        "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
        "BASTION_AUTH__ARGON2_PARALLELISM": "1",
        "BASTION_LIMITS__GROUP_MAX_MEMBERS": str(max(counts) + 1),
        # 1,000 sockets from one loopback address measure fan-out, not rate limits.
        "BASTION_RATELIMIT__ENABLED": "false",
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="bastion-fanout-") as tmp:
        server = start_bastion(Path(tmp), core=1, extra_env=env)
        try:
            chat = setup_chat(server.url, init_app(server.env), members=max(counts) + 1)
            for count in counts:
                result = asyncio.run(
                    run_case(
                        server.url,
                        chat.users,
                        chat.channel_id,
                        count,
                        args.messages,
                        args.gap,
                        args.warmup,
                    )
                )
                print(json.dumps(result))
                results.append(result)
        finally:
            server.stop()
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "args": vars(args) | {"json": None}, "results": results},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
