"""Repeated signals are reported once per interval, with the count held back."""

from __future__ import annotations

import time

from bastion.security.ratelimit.reports import ReportGate


def test_first_occurrence_reports_then_counts_until_the_interval_passes() -> None:
    gate = ReportGate(interval=0.2)
    assert gate.admit("k") == 1
    assert [gate.admit("k") for _ in range(5)] == [None] * 5
    assert gate.admit("other") == 1
    time.sleep(0.25)
    assert gate.admit("k") == 6  # this one and the five held back
