"""Shared pieces of the benchmarks: a Bastion server process, a tenant, wrk runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bastion.core.ids import Kind, new_id
from bastion.store import snapshot

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, path: str = "/readyz", timeout: float = 30) -> None:
    """Poll until ``url + path`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def pinned(core: int | None, argv: list[str]) -> list[str]:
    """Prefix a command with taskset when a core is given and taskset exists."""
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


@dataclass
class Server:
    """A `bastion serve` process with its own data folder."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]

    def stop(self) -> None:
        """Stop the server and wait for it."""
        self.process.terminate()
        self.process.wait(timeout=20)


def start_bastion(
    work: Path, *, core: int | None, extra_env: dict[str, str] | None = None
) -> Server:
    """Start `bastion serve` pinned to ``core`` with data in ``work``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(work / "var"),
        "BASTION_SERVER__PUBLIC_URL": url,
        # Loopback benchmarks measure the application, not TLS (see docs/benchmarks.md).
        "BASTION_TRANSPORT__TLS": "false",
        **(extra_env or {}),
    }
    log = (work / "server.log").open("ab")
    argv = pinned(core, [str(BIN / "bastion"), "serve", "--port", str(port)])
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_ready(url)
    return Server(process, url, env)


def init_app(env: dict[str, str]) -> dict[str, str]:
    """Create an app with `bastion init --json`."""
    out = subprocess.run(
        [str(BIN / "bastion"), "init", "--json", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    created: dict[str, str] = json.loads(out.stdout)
    return created


@dataclass
class Chat:
    """A tenant with users, their tokens and one channel, set up over HTTP."""

    url: str
    users: list[tuple[str, str]]  # (user id, token)
    channel_id: str


def setup_chat(url: str, creds: dict[str, str], members: int) -> Chat:
    """Create ``members`` users (the first is the owner) and one group channel."""
    auth = (creds["client_id"], creds["client_secret"])
    with httpx.Client(base_url=url, timeout=30) as http:
        app_token = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth
        ).json()["access_token"]
        backend = {"Authorization": f"Bearer {app_token}"}
        users = []
        for index in range(members):
            user = http.post(
                "/v1/users",
                headers=backend,
                json={"external_id": f"u{index}", "display_name": f"User {index}"},
            )
            user_id = user.json()["id"]
            token = http.post(
                "/oauth/token",
                auth=auth,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": user_id,
                    "subject_token_type": "urn:bastion:params:oauth:token-type:user-id",
                },
            ).json()["access_token"]
            users.append((user_id, token))
        owner = {"Authorization": f"Bearer {users[0][1]}"}
        channel = http.post(
            "/v1/channels",
            headers=owner,
            json={
                "type": "group",
                "name": "bench",
                "members": [u for u, _ in users[1:100]],
            },
        ).json()
        for user_id, _ in users[100:]:
            http.post(
                f"/v1/channels/{channel['id']}/members", headers=owner, json={"user_id": user_id}
            )
    return Chat(url, users, channel["id"])


_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, script: Path, *, core: int | None, connections: int, seconds: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run wrk with a Lua script; return req/s, latency percentiles (ms) and errors."""
    argv = pinned(
        core,
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
    )
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    latency = {
        f"p{m.group(1)}": float(m.group(2)) * _UNIT[m.group(3)] for m in _LATENCY.finditer(out)
    }
    rps = _RPS.search(out)
    non2xx = _NON2XX.search(out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        **latency,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine() -> dict[str, str]:
    """What the benchmark ran on."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cores": str(os.cpu_count()), "python": sys.version.split()[0]}


def fresh_target(url: str, work: Path, tag: str) -> str:
    """A new, empty database of ``url``'s kind: a SQLite file in ``work``, or a new
    PostgreSQL database on ``url``'s server (made with ``createdb``)."""
    if snapshot.backend_of(url) == "sqlite":
        return f"sqlite+aiosqlite:///{work / (tag + '.db')}"
    name = f"bench_{tag}_{new_id(Kind.REQUEST)[-8:].lower()}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return url.rsplit("/", 1)[0] + "/" + name


def drop_target(url: str | None) -> None:
    """Remove a database made by ``fresh_target`` (a SQLite file goes with its folder)."""
    if url is None or snapshot.backend_of(url) == "sqlite":
        return
    name = url.rsplit("/", 1)[1]
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name], check=True)
