"""SIEM export: security events as JSON lines, RFC 5424 syslog over TLS, or CEF.

Each target has its own bounded queue and delivery task. ``record`` only enqueues, so
a slow or absent receiver never blocks a request. While the receiver is down the
task keeps the event it could not send and retries with backoff; events that arrive
while the queue is full are dropped and counted in ``bastion_siem_dropped_total``
(the ``siem_overflow`` alert rule watches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bastion.observe import metrics
from bastion.observe.events import SecurityEvent
from bastion.observe.logging import get_logger

Transform = Callable[[SecurityEvent], dict[str, Any]]
"""Turns an event into the data exported (identifiers HMAC'd as in the audit log)."""

_log = get_logger("bastion.siem")
_MAX_BACKOFF = 30.0
_SEVERITY = {"success": 6, "allowed": 6, "failure": 4, "denied": 4}
"""Syslog severities (RFC 5424 §6.2.1): informational, or warning for failures."""
_FACILITY_AUTHPRIV = 10


class Target(Protocol):
    """Where formatted events go."""

    name: str

    async def deliver(self, data: dict[str, Any]) -> None:
        """Send one event; raise if the receiver did not take it."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


class SiemSink:
    """An :class:`EventSink` that queues events for one target."""

    def __init__(self, target: Target, transform: Transform, queue_max: int) -> None:
        self.target = target
        self._transform = transform
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_max)
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: SecurityEvent) -> None:
        """Queue the event; a full queue drops it (counted), never blocks."""
        try:
            self._queue.put_nowait(self._transform(event))
        except asyncio.QueueFull:
            metrics.SIEM_DROPPED.labels(target=self.target.name).inc()
            return
        metrics.SIEM_QUEUE.labels(target=self.target.name).set(self._queue.qsize())

    def start(self) -> None:
        """Start delivering in the background."""
        self._task = asyncio.create_task(self._deliver_forever())

    async def drain(self, seconds: float) -> bool:
        """Wait until the queue is empty (or ``seconds`` pass); True if it emptied."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), seconds)
        return self._queue.empty()

    async def close(self) -> None:
        """Stop delivering and close the target."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.target.close()

    async def _deliver_forever(self) -> None:
        while True:
            data = await self._queue.get()
            await self._deliver(data)
            self._queue.task_done()
            metrics.SIEM_QUEUE.labels(target=self.target.name).set(self._queue.qsize())

    async def _deliver(self, data: dict[str, Any]) -> None:
        """Retry one event until the receiver takes it (the queue holds the rest)."""
        delay = 0.1
        while True:
            try:
                await self.target.deliver(data)
            except (OSError, ConnectionError, ssl.SSLError) as exc:
                _log.warning(
                    "siem_delivery_failed", target=self.target.name, error=type(exc).__name__
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            metrics.SIEM_DELIVERED.labels(target=self.target.name).inc()
            return


class JsonLinesTarget:
    """Appends one JSON object per line to a file, or writes to standard output."""

    name = "jsonl"

    def __init__(self, path: str) -> None:
        self._path = path

    async def deliver(self, data: dict[str, Any]) -> None:
        """Write the line (the file is opened per write, so rotation just works)."""
        line = json.dumps(data, separators=(",", ":"), ensure_ascii=True) + "\n"
        if self._path == "-":
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        await asyncio.to_thread(_append, Path(self._path), line)

    async def close(self) -> None:
        """Nothing is held open."""
        return


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


class SyslogTarget:
    """RFC 5424 messages over TCP (TLS by default, RFC 5425), octet-counted framing."""

    name = "syslog"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        formatter: Callable[[dict[str, Any]], str],
        tls: ssl.SSLContext | None,
        hostname: str,
    ) -> None:
        self._host, self._port = host, port
        self._format = formatter
        self._tls = tls
        self._hostname = hostname
        self._writer: asyncio.StreamWriter | None = None

    async def deliver(self, data: dict[str, Any]) -> None:
        """Frame and send one message, connecting (again) if needed."""
        message = rfc5424(data, self._format(data), self._hostname).encode()
        frame = str(len(message)).encode() + b" " + message  # RFC 5425 §4.3 octet counting
        if self._writer is None or self._writer.is_closing():
            _reader, self._writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._host if self._tls else None,
            )
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (OSError, ConnectionError):
            self._writer = None
            raise

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError, ssl.SSLError):
                await self._writer.wait_closed()


def rfc5424(data: dict[str, Any], msg: str, hostname: str) -> str:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`` (RFC 5424 §6)."""
    priority = _FACILITY_AUTHPRIV * 8 + _SEVERITY.get(str(data.get("outcome")), 5)
    stamp = str(data.get("at") or datetime.now(UTC).isoformat())
    structured = (
        "[bastion@32473 "
        + " ".join(
            f'{key}="{_sd_escape(str(data.get(key) or "-"))}"'
            for key in ("action", "outcome", "app_id", "request_id")
        )
        + "]"
    )
    msgid = _printable(str(data.get("action") or "-"))[:32]
    header = f"<{priority}>1 {stamp} {_printable(hostname)[:255]} bastion - {msgid}"
    return f"{header} {structured} {msg}"


def _printable(value: str) -> str:
    """RFC 5424 header fields are PRINTUSASCII (33-126)."""
    cleaned = "".join(ch if 33 <= ord(ch) <= 126 else "_" for ch in value)
    return cleaned or "-"


def _sd_escape(value: str) -> str:
    """§6.3.3: escape '"', '\\' and ']' in structured-data values."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return "".join(ch if ch.isprintable() else " " for ch in escaped)


def json_message(data: dict[str, Any]) -> str:
    """The event as one JSON object (the syslog MSG in ``rfc5424`` format)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


_CEF_SEVERITY = {"success": 3, "allowed": 3, "failure": 6, "denied": 7}


def cef(data: dict[str, Any]) -> str:
    """ArcSight Common Event Format.

    ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension``
    """
    action = str(data.get("action") or "unknown")
    outcome = str(data.get("outcome") or "")
    header = [
        "0",
        "Bastion",
        "Bastion",
        str(data.get("version") or "1"),
        action,
        f"{action} {outcome}".strip(),
        str(_CEF_SEVERITY.get(outcome, 5)),
    ]
    extension = {
        "rt": data.get("at"),
        "outcome": outcome,
        "reason": data.get("reason"),
        "src": data.get("ip"),
        "suser": data.get("subject"),
        "cs1Label": "app_id",
        "cs1": data.get("app_id"),
        "cs2Label": "client_id",
        "cs2": data.get("client_id"),
        "cs3Label": "resource",
        "cs3": data.get("resource"),
        "requestClientApplication": data.get("user_agent"),
        "externalId": data.get("request_id"),
        "dvchost": data.get("node"),
    }
    ext = " ".join(f"{key}={_cef_value(str(value))}" for key, value in extension.items() if value)
    return "CEF:" + "|".join(_cef_header(part) for part in header) + "|" + ext


def _cef_header(value: str) -> str:
    """Header fields escape '\\' and '|'."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cef_value(value: str) -> str:
    """Extension values escape '\\' and '=', and encode newlines."""
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")
