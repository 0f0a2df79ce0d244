"""Counted identities: IPv6 grouped per /64, account age from the id."""

from __future__ import annotations

import time

import pytest

from bastion.core.ids import Kind, new_id
from bastion.security.ratelimit.identity import Caller, created_at, network_of


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not an address", "unknown"),
        (None, "unknown"),
    ],
)
def test_network_of(address: str | None, network: str) -> None:
    assert network_of(address) == network


def test_created_at_reads_the_ulid_time() -> None:
    born = created_at(new_id(Kind.USER))
    assert born is not None
    assert abs(born - time.time()) < 2
    assert created_at("usr_short") is None


def test_a_caller_without_the_scope_identity_counts_by_network() -> None:
    caller = Caller("198.51.100.0", user="usr_1", client="cli_1", app="app_1")
    assert caller.key("user") == "user:usr_1"
    assert caller.key("app") == "app:app_1"
    assert caller.key("ip") == "ip:198.51.100.0"
    assert Caller("198.51.100.0").key("user") == "ip:198.51.100.0"
