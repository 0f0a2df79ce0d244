"""Exponential backoff replayed with a fake clock: doubling, the cap, and decay."""

from __future__ import annotations

from bastion.core.clock import FakeClock
from bastion.security.ratelimit.penalties import Penalties


def _penalties(clock: FakeClock) -> Penalties:
    return Penalties(clock, base=1.0, maximum=8.0, decay=60.0)


def test_each_violation_within_the_decay_window_doubles_the_block() -> None:
    clock = FakeClock()
    penalties = _penalties(clock)
    seen = []
    for _ in range(6):
        penalty = penalties.violation("k")
        seen.append((penalty.level, penalty.seconds))
        assert penalties.blocked_for("k") == penalty.seconds
        clock.advance(penalty.seconds)  # the client waits out its block, then offends again
        assert penalties.blocked_for("k") == 0
    assert seen == [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (6, 8.0)]


def test_good_behaviour_forgives_one_level_per_decay_window() -> None:
    clock = FakeClock()
    penalties = _penalties(clock)
    for _ in range(4):
        penalties.violation("k")
    assert penalties.level("k") == 4
    clock.advance(60)
    assert penalties.level("k") == 3
    clock.advance(119)
    assert penalties.level("k") == 2
    assert penalties.violation("k").seconds == 4.0  # back to level 3, not 5
    clock.advance(3 * 60)
    assert penalties.level("k") == 0
    assert penalties.violation("k").seconds == 1.0  # fully forgiven: no permanent lock-out


def test_keys_are_independent_and_bounded() -> None:
    clock = FakeClock()
    penalties = Penalties(clock, base=1.0, maximum=8.0, decay=60.0, capacity=2)
    penalties.violation("a")
    penalties.violation("a")
    penalties.violation("b")
    assert (penalties.level("a"), penalties.level("b")) == (2, 1)
    penalties.violation("c")
    assert penalties.level("a") == 0  # the least recently punished key was dropped
