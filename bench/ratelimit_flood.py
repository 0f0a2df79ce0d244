"""Flood test on loopback: one client at 20x its quota while 50 users send normally.

Starts ``bastion serve`` (default policies, memory store) pinned to one core, with
the load generator on the other. Each of 50 legitimate users sends a message every
``--gap`` seconds from its own address (``X-Forwarded-For``, honoured because the
server trusts loopback as its proxy); a flooder sends at 20x the per-user message
quota. Two phases of ``--seconds`` each: without the flooder (baseline), then with
it, repeated ``--rounds`` times in turn. Reports the legitimate users' success rate and
latency, the flooder's accepted rate, and the server's share of its core with the
machine's load average in each phase. Prints a JSON summary.

    .venv/bin/python -m bench.ratelimit_flood --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import cpu_seconds, init_app, machine, setup_chat, start_bastion

USERS = 50
QUOTA_PER_SECOND = 5  # the default "message-send" burst quota per user
FLOOD_FACTOR = 20


async def _sender(
    http: httpx.AsyncClient,
    token: str,
    channel: str,
    ip: str,
    gap: float,
    until: float,
    out: list[tuple[int, float]],
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": ip}
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            response = await http.post(
                f"/v1/channels/{channel}/messages", json={"text": f"m{n}"}, headers=headers
            )
            status = response.status_code
        except httpx.TransportError:
            status = 0  # a dropped connection is a failed request, not the end of the run
        out.append((status, time.perf_counter() - start))
        n += 1
        # A steady client: after a slow answer it does not catch up in a burst.
        next_at = max(next_at + gap, time.monotonic())
        await asyncio.sleep(next_at - time.monotonic())


def _summary(samples: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    ok = sorted(latency for status, latency in samples if status == 201)
    all_latency = sorted(latency for _, latency in samples)

    def pct(values: list[float], q: float) -> float:
        return (
            round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 2) if values else 0.0
        )

    return {
        "requests": len(samples),
        "accepted": len(ok),
        "success_rate": round(len(ok) / len(samples), 5) if samples else 0.0,
        "accepted_per_second": round(len(ok) / seconds, 2),
        "p50_ms": pct(all_latency, 0.5),
        "p99_ms": pct(all_latency, 0.99),
        "statuses": {
            str(s): sum(1 for st, _ in samples if st == s) for s in {st for st, _ in samples}
        },
    }


async def _phase(
    url: str, pid: int, chat: Any, seconds: float, gap: float, flood: bool
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    cpu_before, load_before = cpu_seconds(pid), os.getloadavg()[0]
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        until = time.monotonic() + seconds
        legit: list[tuple[int, float]] = []
        flooder: list[tuple[int, float]] = []
        tasks = [
            _sender(http, token, chat.channel_id, f"10.0.1.{i + 1}", gap, until, legit)
            for i, (_, token) in enumerate(chat.users[1 : USERS + 1])
        ]
        if flood:
            rate = QUOTA_PER_SECOND * FLOOD_FACTOR
            flood_token = chat.users[0][1]
            # Several connections, so the flooder is limited by the server, not by one socket.
            tasks += [
                _sender(http, flood_token, chat.channel_id, "10.0.9.9", 10 / rate, until, flooder)
                for _ in range(10)
            ]
        await asyncio.gather(*tasks)
    # The server's share of its core, and how busy the whole machine was meanwhile.
    result: dict[str, Any] = {
        "server_cpu_share": round((cpu_seconds(pid) - cpu_before) / seconds, 3),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "legitimate": _summary(legit, seconds),
    }
    if flood:
        result["flooder"] = {
            **_summary(flooder, seconds),
            "offered_per_second": round(len(flooder) / seconds, 1),
            "quota_per_second": QUOTA_PER_SECOND,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between a user's sends")
    parser.add_argument("--rounds", type=int, default=1, help="baseline and flood phase pairs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    env = {
        "BASTION_LOG__ACCESS_LOG": "false",
        "BASTION_AUTH__ARGON2_TIME_COST": "1",
        "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
        "BASTION_AUTH__ARGON2_PARALLELISM": "1",
        # Established accounts: the new-account factor would halve the flooder's quota.
        "BASTION_RATELIMIT__NEW_ACCOUNT_SECONDS": "0",
        # Plain HTTP on loopback: the benchmark measures limits, not TLS.
        "BASTION_TRANSPORT__TLS": "false",
    }
    with tempfile.TemporaryDirectory(prefix="bastion-flood-") as tmp:
        # Set-up (51 users and their tokens in a burst) with limits off, then restart
        # on the same data with the default limits for the measured phases.
        setup = start_bastion(
            Path(tmp), core=1, extra_env={**env, "BASTION_RATELIMIT__ENABLED": "false"}
        )
        try:
            chat = setup_chat(setup.url, init_app(setup.env), members=USERS + 1)
        finally:
            setup.stop()
        # Tokens name the first server's URL as issuer: keep it.
        server = start_bastion(
            Path(tmp), core=1, extra_env={**env, "BASTION_SERVER__PUBLIC_URL": setup.url}
        )
        try:
            rounds = _rounds(server.url, server.process.pid, chat, args)
        finally:
            server.stop()
    print(json.dumps({"machine": machine(), **_report(rounds, args)}, indent=2))


def _rounds(url: str, pid: int, chat: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Baseline and flood phases in turn, so drift in the machine's load hits both."""
    rounds = []
    for _ in range(args.rounds):
        baseline = asyncio.run(_phase(url, pid, chat, args.seconds, args.gap, flood=False))
        flooded = asyncio.run(_phase(url, pid, chat, args.seconds, args.gap, flood=True))
        rounds.append({"baseline": baseline, "flood": flooded})
    return rounds


def _report(rounds: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Every round, and the median legitimate p99 of the flood phases against the baselines."""
    base_p99 = statistics.median(r["baseline"]["legitimate"]["p99_ms"] for r in rounds)
    flood_p99 = statistics.median(r["flood"]["legitimate"]["p99_ms"] for r in rounds)
    return {
        "seconds": args.seconds,
        "gap": args.gap,
        "rounds": rounds,
        "legit_p99_ms_median": {"baseline": base_p99, "flood": flood_p99},
        "legit_p99_vs_baseline": round(flood_p99 / base_p99, 2) if base_p99 else None,
    }


if __name__ == "__main__":
    main()
