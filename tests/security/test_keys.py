"""Signing-key rotation: next key published first, old key kept until its tokens expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bastion.core.clock import FakeClock
from bastion.observe.events import MemorySink, SecurityEvents
from bastion.security import key_rotation
from bastion.security.keys import ACTIVE, NEXT, RETIRED, KeyRotationError, SigningKeyStore

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def _states(store: SigningKeyStore) -> dict[str, str]:
    return {entry["kid"]: entry["state"] for entry in store.describe()}


def test_first_start_creates_an_active_and_a_published_next_key(tmp_path: Path) -> None:
    """Both are in the JWKS; the active one signs."""
    store = SigningKeyStore(tmp_path / "keys", None)
    ring = store.load_or_create("ES256", T0)
    states = _states(store)
    assert sorted(states.values()) == [ACTIVE, NEXT]
    assert {k["kid"] for k in ring.jwks()["keys"]} == set(states)
    assert states[ring.active.kid or ""] == ACTIVE


def test_rotation_promotes_the_published_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    """After rotation the next key signs, a new next key appears, the old one still verifies."""
    store = SigningKeyStore(tmp_path / "keys", None)
    before = store.load_or_create("ES256", T0)
    upcoming = next(k for k, s in _states(store).items() if s == NEXT)
    done = store.rotate(T0 + timedelta(hours=2), keep_seconds=3600, publish_seconds=3600)
    assert done.activated == upcoming
    assert done.retired == before.active.kid
    after = store.load(T0 + timedelta(hours=2))
    assert after.active.kid == upcoming
    published = {k["kid"] for k in after.jwks()["keys"]}
    assert {done.retired, done.activated, done.published} == published
    assert _states(store)[done.retired] == RETIRED


def test_a_retired_key_is_dropped_once_its_tokens_expired(tmp_path: Path) -> None:
    """prune() deletes the key file after keep_seconds, not before."""
    store = SigningKeyStore(tmp_path / "keys", None)
    store.load_or_create("ES256", T0)
    done = store.rotate(T0 + timedelta(hours=2), keep_seconds=3600, publish_seconds=0)
    assert store.prune(T0 + timedelta(hours=2, minutes=59)) == []
    assert store.prune(T0 + timedelta(hours=3, seconds=1)) == [done.retired]
    assert done.retired not in _states(store)
    assert not (tmp_path / "keys" / f"signing-{done.retired}.pem").exists()


def test_a_key_published_too_recently_is_not_used_yet(tmp_path: Path) -> None:
    """JWKS caches may not know a key yet: rotating before publish_seconds needs --force."""
    store = SigningKeyStore(tmp_path / "keys", None)
    store.load_or_create("ES256", T0)
    with pytest.raises(KeyRotationError):
        store.rotate(T0 + timedelta(minutes=5), keep_seconds=60, publish_seconds=3600)
    forced = store.rotate(
        T0 + timedelta(minutes=5), keep_seconds=60, publish_seconds=3600, force=True
    )
    assert forced.activated


async def test_scheduled_rotation_updates_the_running_ring(tmp_path: Path) -> None:
    """When the period has passed, a maintenance pass rotates and the live ring follows."""
    clock = FakeClock(T0.timestamp())
    store = SigningKeyStore(tmp_path / "keys", None)
    ring = store.load_or_create("ES256", clock.now())
    first = ring.active.kid
    sink = MemorySink()
    events = SecurityEvents(clock, [sink])
    policy = key_rotation.RotationPolicy(
        period_days=30, publish_seconds=3600, keep_seconds=900, check_seconds=60
    )
    await key_rotation.run_once(store, ring, policy, events, clock)
    assert ring.active.kid == first
    clock.advance(31 * 86_400)
    await key_rotation.run_once(store, ring, policy, events, clock)
    assert ring.active.kid != first
    assert [e.reason for e in sink.of("key.rotate")] == ["scheduled"]
    clock.advance(901)
    await key_rotation.run_once(store, ring, policy, events, clock)
    assert first not in {k["kid"] for k in ring.jwks()["keys"]}
    assert len(sink.of("key.retire")) == 1
