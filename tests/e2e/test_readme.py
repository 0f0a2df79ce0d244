"""The README, as a newcomer runs it: `bastion serve` in one process, the quickstart in bash."""

from __future__ import annotations

import os
import re
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`bastion serve` on a free port with its own data folder, as a real process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(tmp_path / "var"),
        "BASTION_SERVER__PUBLIC_URL": url,
        "BASTION_AUTH__ARGON2_TIME_COST": "1",
        "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
        "BASTION_DATABASE__URL": "",
    }
    env.pop("BASTION_TEST_DATABASE_URL", None)
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
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
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
