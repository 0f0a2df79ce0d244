"""Alert notifiers: a signed webhook (with retries), e-mail over SMTP, and the log.

Webhook bodies are JSON, signed like Stripe's: ``X-Bastion-Timestamp`` carries the
Unix time and ``X-Bastion-Signature`` is ``v1=`` followed by the hex HMAC-SHA256 of
``<timestamp>.<body>`` under the shared secret, so a receiver can check both origin
and freshness (see ``verify_signature``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

from bastion.observe.alerts import Notification
from bastion.observe.logging import get_logger

SIGNATURE_HEADER = "X-Bastion-Signature"
TIMESTAMP_HEADER = "X-Bastion-Timestamp"
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: float
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale bodies."""
    if abs(now - float(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    """POSTs the signed JSON body; retries with exponential backoff on failure."""

    name = "webhook"

    def __init__(
        self, url: str, secret: bytes, *, retries: int = 5, backoff: float = 1.0, timeout: float = 5
    ) -> None:
        self._url = url
        self._secret = secret
        self._retries = retries
        self._backoff = backoff
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        """Deliver, retrying transport errors and retryable statuses; raise at the end."""
        body = json.dumps(notification.as_dict(), separators=(",", ":")).encode()
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            for attempt in range(self._retries + 1):
                if await self._attempt(client, body):
                    return
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2**attempt)
        raise ConnectionError(f"webhook not accepted after {self._retries + 1} attempts")

    async def _attempt(self, client: httpx.AsyncClient, body: bytes) -> bool:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = await client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        if response.is_success:
            return True
        if response.status_code in _RETRYABLE:
            return False
        raise ConnectionError(f"webhook refused the notification ({response.status_code})")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to send alert e-mail."""

    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0


class EmailNotifier:
    """Sends a short plain-text e-mail per notification (smtplib, off the event loop)."""

    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, notification: Notification) -> None:
        """Build and send the message."""
        await asyncio.to_thread(self._send, _message(notification, self._config))

    def _send(self, message: EmailMessage) -> None:
        config = self._config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username and config.password:
                smtp.login(config.username, config.password)
            smtp.send_message(message)


def _message(notification: Notification, config: SmtpConfig) -> EmailMessage:
    data = notification.as_dict()
    message = EmailMessage()
    status = "FIRING" if notification.status == "firing" else "resolved"
    message["Subject"] = f"[Bastion {data['severity']}] {data['alert']} {status}"
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message.set_content(json.dumps(data, indent=2))
    return message


class LogNotifier:
    """Writes each notification as a structured log line (``bastion.alerts``)."""

    name = "log"

    def __init__(self) -> None:
        self._log = get_logger("bastion.alerts")

    async def send(self, notification: Notification) -> None:
        """Log it at warning level (error when critical)."""
        data = notification.as_dict()
        if notification.rule.severity == "critical" and notification.status == "firing":
            await self._log.aerror("alert", **data)
        else:
            await self._log.awarning("alert", **data)
