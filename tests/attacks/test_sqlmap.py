"""sqlmap against representative endpoints (query, path and JSON body parameters, with a
valid token) finds nothing injectable. Needs the ``sqlmap`` command (Debian package,
installed by ``.ci/run``); marked ``sqlmap``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import Databases
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

pytestmark = pytest.mark.sqlmap

SQLMAP = shutil.which("sqlmap")
CLEAN = "do not appear to be injectable"
FOUND = ("identified the following injection point", "is vulnerable", "appears to be injectable")


def sqlmap(
    url: str, token: str, out: Path, dbms: str, method: str = "GET", data: str | None = None
) -> str:
    """Run sqlmap on the ``*``-marked parameter of one request; return its output."""
    assert SQLMAP is not None, "sqlmap is not installed: apt-get install -y sqlmap (README, Set up)"
    args = [
        SQLMAP, "-u", url, "--method", method,
        "-H", f"Authorization: Bearer {token}",
        "--batch", "--level=2", "--risk=1", "--technique=BEUST", "--time-sec=1",
        f"--dbms={dbms}", "--threads=2", "--timeout=10", "--retries=0",
        "--flush-session", "--disable-coloring", f"--output-dir={out}",
    ]  # fmt: skip
    if data is not None:
        args += ["--data", data, "-H", "Content-Type: application/json"]
    done = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        args, capture_output=True, text=True, timeout=240, check=False
    )
    return done.stdout + done.stderr


@pytest.fixture
async def targets(tenant: Tenant) -> dict[str, str]:
    """Ids and tokens for the requests sqlmap attacks."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    return {
        "backend": await tenant.backend_token(),
        "user": alice.token,
        "user_id": alice.id,
        "channel_id": str(channel["id"]),
    }


def _dbms(databases: Databases) -> str:
    return "PostgreSQL" if databases.backend == "postgresql" else "SQLite"


def _assert_clean(output: str) -> None:
    assert CLEAN in output, output[-3000:]
    assert not any(sign in output for sign in FOUND), output[-3000:]


async def test_query_and_path_parameters(
    server: ServerThread,
    targets: dict[str, str],
    databases: Databases,
    tmp_path: Path,
    http: httpx.AsyncClient,
) -> None:
    """A query filter and a path id: not injectable."""
    base = server.base_url
    dbms = _dbms(databases)
    _assert_clean(sqlmap(f"{base}/v1/users?external_id=alice*", targets["backend"], tmp_path, dbms))
    _assert_clean(
        sqlmap(f"{base}/v1/users/{targets['user_id']}*", targets["backend"], tmp_path, dbms)
    )
    users = await http.get("/v1/users", headers={"Authorization": f"Bearer {targets['backend']}"})
    assert len(users.json()["data"]) == 2


async def test_json_body_parameters(
    server: ServerThread,
    targets: dict[str, str],
    databases: Databases,
    tmp_path: Path,
    http: httpx.AsyncClient,
) -> None:
    """Message text and a display name in JSON bodies: not injectable; data intact."""
    base = server.base_url
    dbms = _dbms(databases)
    url = f"{base}/v1/channels/{targets['channel_id']}/messages"
    _assert_clean(sqlmap(url, targets["user"], tmp_path, dbms, "POST", '{"text": "hi*"}'))
    user_url = f"{base}/v1/users/{targets['user_id']}"
    body = '{"display_name": "Alice*"}'
    _assert_clean(sqlmap(user_url, targets["backend"], tmp_path, dbms, "PATCH", body))
    user = await http.get(
        f"/v1/users/{targets['user_id']}",
        headers={"Authorization": f"Bearer {targets['backend']}"},
    )
    assert user.status_code == 200
