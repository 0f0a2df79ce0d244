"""A simulated credential-stuffing run: the alert fires once, signed to a webhook, by e-mail.

A dedicated server is configured with a real HTTP webhook receiver and a real SMTP
server (aiosmtpd), both on loopback. One address fails to log in to many accounts;
the alert engine of the running server evaluates its rules; the receiver checks the
HMAC signature exactly as an integrator would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client.parser import text_string_to_metric_families

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.observe.events import Actor, Origin
from bastion.observe.notifiers import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from bastion.security import scopes
from bastion.security.audit.operators import create_operator_client
from tests.conftest import Databases, make_settings, start_server
from tests.support.server import ServerThread, free_port

WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
ATTACKER = "203.0.113.7"


@dataclass
class Receiver:
    """A webhook endpoint that answers 503 to the first POST, then 200."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0


def _start_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.attempts += 1
            status = 503 if receiver.attempts == 1 else 200
            if status == 200:
                receiver.requests.append((dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class Mailbox:
    """An aiosmtpd handler keeping every message delivered."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook name
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"


@dataclass(frozen=True)
class Rig:
    """The server under test with its webhook receiver and mailbox."""

    server: ServerThread
    receiver: Receiver
    mailbox: Mailbox
    app_id: str


@pytest.fixture
def rig(databases: Databases, tmp_path: Path) -> Iterator[Rig]:
    """A server whose alerts go to a local webhook and a local SMTP server."""
    receiver, mailbox = Receiver(), Mailbox()
    httpd = _start_receiver(receiver)
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = make_settings(
        tmp_path,
        databases.new(),
        monitor={
            "webhook_url": f"http://127.0.0.1:{httpd.server_address[1]}/hooks/bastion",
            "webhook_secret": WEBHOOK_SECRET,
            "webhook_backoff_seconds": 0.05,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "email_to": ["secops@example.com"],
            "evaluation_seconds": 3600,
        },
    )
    server = start_server(settings)
    tenant = server.run(
        create_app(server.services.db, secret_hasher(settings), SystemClock(), name="t")
    )
    try:
        yield Rig(server, receiver, mailbox, tenant.app.id)
    finally:
        server.stop()
        smtp.stop()
        httpd.shutdown()
        httpd.server_close()


def _stuff(rig: Rig, accounts: int) -> None:
    events = rig.server.services.events
    for i in range(accounts):
        rig.server.run(
            events.emit(
                "auth.login",
                "failure",
                actor=Actor(app_id=rig.app_id, subject=f"victim-{i}@example.com"),
                origin=Origin(ip=ATTACKER, user_agent="stuffer/1.0"),
                reason="invalid_credentials",
            )
        )


def _evaluate(rig: Rig) -> list[str]:
    sent = rig.server.run(rig.server.services.monitoring.engine.evaluate())
    return [f"{n.rule.name}:{n.status}" for n in sent]


def test_stuffing_fires_once_signed_to_the_webhook_and_by_mail(rig: Rig) -> None:
    """12 accounts from one address: one signed webhook (after a retry), one e-mail."""
    _stuff(rig, 12)
    assert _evaluate(rig) == ["credential_stuffing:firing"]
    _stuff(rig, 12)
    assert _evaluate(rig) == []  # still firing, within the cool-down: no repeat
    assert rig.receiver.attempts == 2  # the first POST got a 503 and was retried
    ((headers, body),) = rig.receiver.requests
    assert verify_signature(
        WEBHOOK_SECRET.encode(),
        headers[TIMESTAMP_HEADER],
        body,
        headers[SIGNATURE_HEADER],
        now=time.time(),
        tolerance=300,
    )
    assert not verify_signature(
        b"another-secret",
        headers[TIMESTAMP_HEADER],
        body,
        headers[SIGNATURE_HEADER],
        now=time.time(),
        tolerance=300,
    )
    alert = json.loads(body)
    assert (alert["alert"], alert["status"], alert["severity"]) == (
        "credential_stuffing",
        "firing",
        "critical",
    )
    assert alert["value"] == 12
    assert alert["details"] == {"source": ATTACKER, "accounts": 12}
    (raw,) = rig.mailbox.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "secops@example.com"
    assert "credential_stuffing" in mail["Subject"]
    assert "FIRING" in mail["Subject"]


def test_alert_state_through_the_admin_api_and_metrics(rig: Rig) -> None:
    """The firing rule shows in /v1/admin/alerts (metrics:read) and in bastion_alert_firing."""
    _stuff(rig, 10)
    _evaluate(rig)
    client = rig.server.run(
        create_operator_client(
            rig.server.services.db,
            secret_hasher(rig.server.settings),
            SystemClock(),
            app_id=rig.app_id,
            granted=frozenset({scopes.METRICS_READ}),
        )
    )
    with httpx.Client(base_url=rig.server.base_url, timeout=10) as http:
        assert http.get("/v1/admin/alerts").status_code == 401
        token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        states = {
            a["rule"]: a for a in http.get("/v1/admin/alerts", headers=headers).json()["data"]
        }
        exposition = http.get("/metrics", headers=headers).text
    assert states["credential_stuffing"]["state"] == "firing"
    assert states["credential_stuffing"]["since"] is not None
    assert states["password_spraying"]["state"] == "inactive"
    firing = {
        sample.labels["rule"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "bastion_alert_firing"
        for sample in family.samples
    }
    assert firing["credential_stuffing"] == 1.0
