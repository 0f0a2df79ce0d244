"""Keeping the signing keys current: scheduled rotation, pruning, and reloading.

Every server runs ``maintain`` in the background. Each pass re-reads the key folder
(so a rotation done by another server or by ``bastion keys rotate-signing`` is
picked up), rotates when the active key is older than the rotation period, and
deletes retired keys whose tokens have all expired.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.observe.events import SecurityEvents
from bastion.security.keys import KeyRing, KeyRotationError, SigningKeyStore


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """When to rotate and how long to keep a retired key."""

    period_days: int
    publish_seconds: int
    keep_seconds: int
    check_seconds: float


async def run_once(
    store: SigningKeyStore,
    ring: KeyRing,
    policy: RotationPolicy,
    events: SecurityEvents,
    clock: Clock,
) -> None:
    """One maintenance pass."""
    now = clock.now()
    if store.rotation_due(now, policy.period_days):
        try:
            done = await asyncio.to_thread(
                store.rotate,
                now,
                keep_seconds=policy.keep_seconds,
                publish_seconds=policy.publish_seconds,
            )
        except KeyRotationError:
            done = None
        if done is not None:
            await events.emit(
                "key.rotate",
                "success",
                resource=f"signing_key:{done.activated}",
                reason="scheduled",
                details={"retired": done.retired, "published": done.published},
            )
    for kid in await asyncio.to_thread(store.prune, now):
        await events.emit("key.retire", "success", resource=f"signing_key:{kid}")
    ring.update_from(await asyncio.to_thread(store.load, now))


async def maintain(
    store: SigningKeyStore,
    ring: KeyRing,
    policy: RotationPolicy,
    events: SecurityEvents,
    clock: Clock,
) -> None:
    """Run maintenance passes forever, ``check_seconds`` apart."""
    while True:
        await asyncio.sleep(policy.check_seconds)
        try:
            await run_once(store, ring, policy, events, clock)
        except (OSError, ValueError, KeyRotationError):
            # A half-written folder or a transient error: keep the keys we have.
            continue
