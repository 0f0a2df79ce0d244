"""Message send throughput: Bastion's full stack against the naive ceiling, in one run.

Each round starts the server pinned to core 1 (one uvicorn worker, uvloop, httptools)
and drives it with wrk pinned to core 0, alternating Bastion and the ceiling.

    .venv/bin/python -m bench.send_throughput --rounds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BIN,
    cpu_seconds,
    free_port,
    init_app,
    machine,
    pinned,
    setup_chat,
    start_bastion,
    wait_ready,
    wrk,
)

# Every request sends a different text, as chat does: a send renders its Markdown, and a
# repeated text would find its rendering cached.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format(nil, "/v1/channels/{channel}/messages", nil,
    '{{"text": "hello from the benchmark, message ' .. sent .. ' of a typical length for chat"}}')
end
"""


def run_bastion(
    work: Path, script: Path, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    server = start_bastion(work, core=1, extra_env=env)
    try:
        return measure(server.url, script, server.process.pid, args, server.env)
    finally:
        server.stop()


def run_ceiling(work: Path, script: Path, args: argparse.Namespace, issuer: str) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_DB": str(work / "var" / "bastion.db"),
        "BENCH_KEYS": str(work / "var" / "keys"),
        "BENCH_ISSUER": issuer,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    argv = pinned(
        1,
        [
            str(BIN / "uvicorn"),
            "bench.ceiling_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-server-header",
        ],
    )
    log = (work / "ceiling.log").open("ab")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", "/openapi.json")
        return measure(f"http://127.0.0.1:{port}", script, process.pid, args, env)
    finally:
        process.terminate()
        process.wait(timeout=20)


def measure(
    url: str, script: Path, pid: int, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    wrk(url, script, core=0, connections=args.connections, seconds=2, env=env)  # warm-up
    before, started = cpu_seconds(pid), time.monotonic()
    result = wrk(url, script, core=0, connections=args.connections, seconds=args.seconds, env=env)
    cpu = cpu_seconds(pid) - before
    requests = result["rps"] * (time.monotonic() - started)
    result["cpu_us_per_request"] = round(cpu / max(requests, 1) * 1e6, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action="store_true", help="keep Bastion's access log on")
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args()
    # One user sending as fast as wrk can measures the send path, not the rate limiter
    # (bench/ratelimit_overhead.py measures that).
    env = {"BASTION_RATELIMIT__ENABLED": "false"}
    if not args.access_log:
        env["BASTION_LOG__ACCESS_LOG"] = "false"
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as tmp:
        work = Path(tmp)
        server = start_bastion(work, core=1, extra_env=env)
        chat = setup_chat(server.url, init_app(server.env), members=2)
        issuer = server.url
        server.stop()
        script = work / "send.lua"
        script.write_text(LUA.format(token=chat.users[0][1], channel=chat.channel_id))
        rounds: dict[str, list[dict[str, Any]]] = {"bastion": [], "ceiling": []}
        for index in range(args.rounds):
            # Bastion and the ceiling must be reachable at the same issuer URL: the token
            # names it; the ceiling checks it the same way.
            rounds["bastion"].append(
                run_bastion(work, script, args, {**env, "BASTION_SERVER__PUBLIC_URL": issuer})
            )
            rounds["ceiling"].append(run_ceiling(work, script, args, issuer))
            print(f"round {index + 1}: bastion {rounds['bastion'][-1]}")
            print(f"round {index + 1}: ceiling {rounds['ceiling'][-1]}")
    summary = {name: _pool(results) for name, results in rounds.items()}
    summary["ratio"] = round(summary["bastion"]["rps"] / summary["ceiling"]["rps"], 3)
    report = {
        "machine": machine(),
        "args": vars(args) | {"json": None},
        "rounds": rounds,
        "summary": summary,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _pool(results: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("rps", "p50", "p99", "cpu_us_per_request")
    return {key: round(statistics.median(r[key] for r in results), 2) for key in keys} | {
        "non_2xx": sum(r["non_2xx"] for r in results)
    }


if __name__ == "__main__":
    main()
