"""RFC 3339 timestamps as the API writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from bastion.core.clock import rfc3339


def test_rfc3339_is_utc_with_milliseconds_and_a_four_digit_year() -> None:
    """Any aware time is written in UTC, to the millisecond (truncated), year in 4 digits."""
    five_east = timezone(timedelta(hours=5))
    assert rfc3339(datetime(2026, 1, 2, 8, 4, 5, 678999, tzinfo=five_east)) == (
        "2026-01-02T03:04:05.678Z"
    )
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    assert rfc3339(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0999-01-02T03:04:05.000Z"
