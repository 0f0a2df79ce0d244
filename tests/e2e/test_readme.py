"""The README, as a newcomer runs it: `bastion serve` in one process, the quickstart in bash."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def quickstart() -> str:
    """The bash block between the quickstart markers of README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- quickstart:begin -->\n```bash\n(.*?)```\n<!-- quickstart:end -->", text, re.DOTALL
    )
    assert block is not None, "README.md lost its quickstart block"
    return block.group(1)


def ssl_context(cert: Path) -> ssl.SSLContext:
    """Trust exactly the server's self-signed certificate."""
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`bastion serve` on a free port with its own data folder, as a real process."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(tmp_path / "var"),
        "BASTION_AUTH__ARGON2_TIME_COST": "1",
        "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
        "BASTION_DATABASE__URL": "",
    }
    # As on a newcomer's machine: no public URL, so the server derives it from --port.
    for name in ("BASTION_TEST_DATABASE_URL", "BASTION_SERVER__PUBLIC_URL", "BASTION_AUTH__ISSUER"):
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(BIN / "bastion"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                cert = tmp_path / "var" / "tls" / "server.crt"
                ready = httpx.get(f"{url}/readyz", timeout=1, verify=ssl_context(cert))
                if ready.status_code == 200:
                    break
            except (httpx.TransportError, OSError, ssl.SSLError):
                time.sleep(0.1)
        else:
            pytest.fail("bastion serve did not become ready")
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_readme_quickstart_runs(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """Every command of the quickstart works and Bob receives Alice's message live."""
    url, env = served
    (tmp_path / ".venv").symlink_to(BIN.parent)
    result = subprocess.run(  # noqa: S603 - bash runs the README's own block
        ["/bin/bash", "-euo", "pipefail", "-c", quickstart()],
        cwd=tmp_path,
        env={**env, "BASTION": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bob received: Hello, Bob!" in result.stdout.splitlines()
    assert '"text":"Hello, Bob!"' in result.stdout
    # The client secret lands in the git-ignored var/, readable by its owner only.
    assert list(tmp_path.glob("*.json")) == []
    secrets = tmp_path / "var" / "app.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert "client_secret" in secrets.read_text(encoding="utf-8")
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "var/" in ignored


def test_serve_advertises_the_port_it_was_started_on(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """`serve --port N` with no public URL: discovery and the tokens name port N, so the
    issuer matches the URL the metadata was fetched from (RFC 8414 §3.3)."""
    url, env = served
    tls = ssl_context(tmp_path / "var" / "tls" / "server.crt")
    metadata = httpx.get(f"{url}/.well-known/oauth-authorization-server", verify=tls).json()
    assert metadata["issuer"] == url
    assert metadata["token_endpoint"] == f"{url}/oauth/token"
    created = subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "bastion"), "init", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    app = json.loads(created.stdout)
    answer = httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
        verify=tls,
    )
    assert answer.status_code == 200, answer.text
    payload = answer.json()["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["iss"] == url


def test_serve_reports_its_certificate(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """`serve` is HTTPS out of the box and prints the certificate's SHA-256 fingerprint."""
    url, _env = served
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert f"listening on {url}" in " ".join(log.split())
    match = re.search(r"fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", log)
    assert match is not None, log
    pem = (tmp_path / "var" / "tls" / "server.crt").read_text(encoding="ascii")
    der = ssl.PEM_cert_to_DER_cert(pem)
    assert match.group(1) == hashlib.sha256(der).digest().hex(":").upper()
    assert (tmp_path / "var" / "tls" / "server.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(httpx.TransportError):
        httpx.get(url.replace("https://", "http://") + "/readyz", timeout=2)
