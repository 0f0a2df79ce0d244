"""Feeds the key-age gauges: the KEK in use (local keyring or Vault) and the signing key."""

from __future__ import annotations

import asyncio

from bastion.observe.key_ages import KekSample, KeyAgeCollector
from bastion.observe.logging import get_logger
from bastion.security.crypto.errors import KeySourceDown, KeyUnavailable
from bastion.security.crypto.keysource import ManagedKeySource, call
from bastion.security.keys import KeyRotationError, SigningKeyStore

_log = get_logger("bastion.crypto")
_DAY = 86_400


async def sample(
    collector: KeyAgeCollector,
    source: ManagedKeySource,
    signing: SigningKeyStore,
    max_age_days: int,
) -> None:
    """Read the keys' creation times once; an unreachable source keeps the last sample."""
    try:
        status = await call(source, source.status)
    except (KeySourceDown, KeyUnavailable) as exc:
        reason = exc.reason if isinstance(exc, KeySourceDown) else str(exc)
        _log.warning("crypto.key_age_unavailable", source=source.name, reason=reason)
    else:
        created = dict(status.versions)[status.primary]
        collector.record(
            KekSample(source.name, status.primary, created.timestamp(), float(max_age_days * _DAY))
        )
    try:
        since = signing.active_since()
    except (OSError, ValueError, KeyRotationError):
        return
    collector.signing_created = since.timestamp() if since is not None else None


async def keep_sampling(
    collector: KeyAgeCollector,
    source: ManagedKeySource,
    signing: SigningKeyStore,
    max_age_days: int,
    interval: float,
) -> None:
    """Refresh the samples every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        await sample(collector, source, signing, max_age_days)
