"""Offender counting and exponential backoff, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.core.clock import FakeClock
from bastion.security.guard.offenders import Offenders


def offenders(clock: FakeClock, **kw: int) -> Offenders:
    settings = {"threshold": 3, "window": 60, "block": 10, "block_max": 40, **kw}
    return Offenders(clock, **settings)


def test_threshold_within_the_window_blocks() -> None:
    """The third offence in a minute blocks for the base time; others are untouched."""
    clock = FakeClock()
    table = offenders(clock)
    assert table.offend("a") is None
    assert table.offend("a") is None
    block = table.offend("a")
    assert block is not None
    assert (block.seconds, block.strikes) == (10, 1)
    assert table.blocked_for("a") == 10
    assert table.blocked_for("b") == 0
    clock.advance(10)
    assert table.blocked_for("a") == 0


def test_offences_outside_the_window_do_not_add_up() -> None:
    """Two offences a minute apart never reach a threshold of three."""
    clock = FakeClock()
    table = offenders(clock)
    for _ in range(10):
        assert table.offend("a") is None
        assert table.offend("a") is None
        clock.advance(61)


def test_each_new_block_doubles_up_to_the_maximum() -> None:
    """10 s, 20 s, 40 s, then capped at 40 s."""
    clock = FakeClock()
    table = offenders(clock)
    seen = []
    for _ in range(4):
        block = None
        while block is None:
            block = table.offend("a")
        seen.append(block.seconds)
        clock.advance(block.seconds)
    assert seen == [10, 20, 40, 40]


def test_strikes_are_forgotten_after_a_quiet_day() -> None:
    """A day after its last block an address starts again at the base time."""
    clock = FakeClock()
    table = offenders(clock)
    for _ in range(3):
        table.offend("a")
    clock.advance(86_400 + 20)
    for _ in range(2):
        table.offend("a")
    block = table.offend("a")
    assert block is not None
    assert block.seconds == 10


def test_the_table_is_bounded() -> None:
    """Past capacity, addresses that are not blocked are forgotten first."""
    clock = FakeClock()
    table = offenders(clock, capacity=100, threshold=2)
    table.offend("bad")
    assert table.offend("bad") is not None
    for i in range(1000):
        table.offend(f"10.0.{i // 256}.{i % 256}")
    assert table.blocked_for("bad") == 10
    assert len(table._records) <= 100


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 100)), max_size=200))
def test_blocks_never_exceed_the_maximum(steps: list[tuple[str, float]]) -> None:
    """Whatever the sequence of offences, no block is longer than block_max."""
    clock = FakeClock()
    table = offenders(clock)
    for address, pause in steps:
        clock.advance(pause)
        block = table.offend(address)
        assert block is None or 10 <= block.seconds <= 40
        assert table.blocked_for(address) <= 40
