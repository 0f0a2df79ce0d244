"""A full scenario against ``bastion serve``; no log line holds a token, secret or message.

The server runs as its own process with info-level JSON logs and the access log on;
everything it writes to stdout and stderr is kept. The scenario uses credentials,
tokens (good, wrong and in forbidden places), message bodies with CR/LF, and the
auditor API; afterwards every line must parse as one JSON object, and none may
contain any secret the scenario used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bastion.security.oauth import rfc8693
from tests.conftest import Databases
from tests.support.server import free_port

PASSPHRASE = "log-scan passphrase 8d1c3e"
BODIES = [
    "the eagle lands at midnight 7f3a",
    'line one\r\nforged-log-line {"level": "error"}',
    "edited: the package is under the bridge 2b9e",
]
WRONG_SECRET = "wrong-secret-Zq9xT4mPp0Lk"


@dataclass
class Run:
    """The server process, its environment and every secret the scenario used."""

    env: dict[str, str]
    base_url: str
    log: Path
    secrets: list[str] = field(default_factory=list)


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "bastion", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture
def run(databases: Databases, tmp_path: Path) -> Iterator[Run]:
    """``bastion serve`` on a fresh database, its output captured to a file."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BASTION_")},
        "BASTION_SERVER__DATA_DIR": str(tmp_path / "data"),
        "BASTION_SERVER__PORT": str(port),
        "BASTION_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "BASTION_DATABASE__URL": databases.new(),
        "BASTION_AUTH__KEYS_PASSPHRASE": PASSPHRASE,
        "BASTION_AUTH__ARGON2_TIME_COST": "1",
        "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
        "BASTION_AUTH__ARGON2_PARALLELISM": "1",
        "BASTION_LOG__LEVEL": "debug",
        "BASTION_LOG__ACCESS_LOG": "true",
        "BASTION_TRANSPORT__TLS": "false",
    }
    log = tmp_path / "server.log"
    created = json.loads(_cli(env, "init", "--json"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve"], env=env, stdout=out, stderr=out
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(base_url)
            current = Run(env, base_url, log, [PASSPHRASE, WRONG_SECRET, *BODIES])
            current.secrets.append(created["client_secret"])
            current.env["CLIENT_SECRET"] = created["client_secret"]
            current.env["APP_ID"] = created["app_id"]
            current.env["CLIENT_ID"] = created["client_id"]
            yield current
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)


def _wait_ready(base_url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not become ready")


def _token(http: httpx.Client, run: Run, secret: str, **form: str) -> httpx.Response:
    return http.post("/oauth/token", data=form, auth=(run.env["CLIENT_ID"], secret))


def _scenario(run: Run) -> None:
    secret = run.env["CLIENT_SECRET"]
    with httpx.Client(base_url=run.base_url, timeout=10) as http:
        assert _token(http, run, WRONG_SECRET, grant_type="client_credentials").status_code == 401
        backend_token = _token(http, run, secret, grant_type="client_credentials").json()
        backend = {"Authorization": f"Bearer {backend_token['access_token']}"}
        run.secrets.append(backend_token["access_token"])
        users, tokens = {}, {}
        for name in ("alice", "bob"):
            made = http.post(
                "/v1/users", json={"external_id": name, "display_name": name}, headers=backend
            )
            users[name] = made.json()["id"]
            exchanged = _token(
                http,
                run,
                secret,
                grant_type=rfc8693.GRANT_TYPE,
                subject_token=users[name],
                subject_token_type=rfc8693.USER_ID_TYPE,
            ).json()["access_token"]
            tokens[name] = exchanged
            run.secrets.append(exchanged)
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        channel = http.post(
            "/v1/channels",
            json={"type": "group", "name": "ops", "members": [users["bob"]]},
            headers=alice,
        ).json()["id"]
        sent = [
            http.post(f"/v1/channels/{channel}/messages", json={"text": t}, headers=alice).json()
            for t in BODIES[:2]
        ]
        edited = http.patch(
            f"/v1/messages/{sent[0]['id']}", json={"text": BODIES[2]}, headers=alice
        )
        assert edited.status_code == 200, edited.text
        listed = http.get(
            f"/v1/channels/{channel}/messages",
            headers={"Authorization": f"Bearer {tokens['bob']}"},
        )
        assert BODIES[2] in listed.text
        # Tokens where they do not belong, and a forged one.
        refused = http.get(f"/v1/channels?access_token={tokens['bob']}")
        assert refused.status_code in (400, 401)
        forged = tokens["bob"][:-6] + "AAAAAA"
        run.secrets.append(forged)
        assert (
            http.get("/v1/channels", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )
        out = _cli(run.env, "audit", "client", "--app", run.env["APP_ID"], "--scope", "audit:read")
        auditor_id, auditor_secret = (line.split("=", 1)[1] for line in out.splitlines())
        run.secrets.append(auditor_secret)
        audit_token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(auditor_id, auditor_secret),
        ).json()["access_token"]
        run.secrets.append(audit_token)
        export = http.get(
            "/v1/audit/events/export", headers={"Authorization": f"Bearer {audit_token}"}
        )
        assert export.status_code == 200
        for secret_value in run.secrets:
            assert secret_value not in export.text


def test_no_secret_appears_in_any_log_line(run: Run) -> None:
    """Every line is one JSON object; none holds a token, secret, password or message text."""
    _scenario(run)
    time.sleep(0.2)  # let the last access-log lines reach the file
    lines = run.log.read_text(encoding="utf-8").splitlines()
    # The start-up banner (console messages, wrapped by rich) is the only other text.
    banner = [line for line in lines if line.strip() and not line.startswith("{")]
    assert len(banner) <= 5
    assert any("Bastion listening" in line for line in banner)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    assert len(requests) >= 15
    send = next(r for r in requests if r["route"] == "/v1/channels/{channel_id}/messages")
    assert {"request_id", "method", "status", "ms", "principal", "ip"} <= set(send)
    assert send["ip"] == "127.0.0.0"  # truncated by default
    assert any(r.get("event") == "security_event" for r in records)
    text = run.log.read_text(encoding="utf-8")
    for secret in run.secrets:
        assert secret not in text
        for piece in secret.split("."):
            if len(piece) >= 16:
                assert piece not in text
    assert "forged-log-line" not in text
