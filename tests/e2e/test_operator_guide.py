"""The operator guide's production start, run as written: it must start, in production."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def production_example() -> str:
    """The bash block between the production markers of docs/operator-guide.md."""
    text = (ROOT / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- production:begin -->\n```bash\n(.*?)```\n<!-- production:end -->", text, re.DOTALL
    )
    assert block is not None, "docs/operator-guide.md lost its production example"
    return block.group(1)


def test_the_documented_production_start_starts(tmp_path: Path) -> None:
    """With its secret files in place, the example serves, in production mode, with the
    issuer it names: nothing it needs is missing from the page."""
    example = production_example()
    assert "--port 8000" in example
    secret_files = tmp_path / "secrets"
    secret_files.mkdir()
    for name in re.findall(r"/run/secrets/([\w-]+)", example):
        (secret_files / name).write_text(secrets.token_urlsafe(32), encoding="ascii")
    port = free_port()
    script = example.replace("/run/secrets/", f"{secret_files}/").replace(
        "--port 8000", f"--port {port}"
    )
    (tmp_path / ".venv").symlink_to(BIN.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - bash runs the guide's own block
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        discovery = _served(port, tmp_path / "var" / "tls" / "server.crt", process)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        log.close()
    output = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert discovery is not None, output
    assert discovery["issuer"] == "https://chat.example.com"
    assert "Invalid configuration" not in output


def _served(port: int, cert: Path, process: subprocess.Popen[bytes]) -> dict[str, object] | None:
    """The server's discovery document once it is ready; None if it stopped or never was."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            context = ssl.create_default_context(cafile=str(cert))
            base = f"https://127.0.0.1:{port}"
            if httpx.get(f"{base}/readyz", verify=context, timeout=1).status_code == 200:
                found = httpx.get(f"{base}/.well-known/oauth-authorization-server", verify=context)
                document: dict[str, object] = found.json()
                return document
        except (httpx.TransportError, OSError, ssl.SSLError):
            time.sleep(0.1)
    return None
