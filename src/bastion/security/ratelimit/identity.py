"""Who a request counts against: the client network, the user, the OAuth client, the app.

IPv6 clients are grouped per /64, the block one subscriber usually gets, so rotating
through addresses of one's own prefix does not reset the count.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import NamedTuple

_IPV6_GROUP = 64
_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}
_ULID_TIME_CHARS = 10


@lru_cache(maxsize=65_536)
def network_of(address: str | None) -> str:
    """The counted network of a client address: the address for IPv4, its /64 for IPv6."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_GROUP), strict=False))
    return str(ip)


@lru_cache(maxsize=65_536)
def created_at(object_id: str) -> float | None:
    """Seconds since the epoch when a ULID-based id (``usr_01J…``) was made."""
    _, _, ulid = object_id.partition("_")
    if len(ulid) != 26:
        return None
    value = 0
    for char in ulid[:_ULID_TIME_CHARS]:
        digit = _CROCKFORD.get(char)
        if digit is None:
            return None
        value = value * 32 + digit
    return value / 1000


class Caller(NamedTuple):
    """What is known about a request's origin before it reaches a route (made per request)."""

    network: str
    user: str | None = None
    client: str | None = None
    app: str | None = None

    def key(self, scope: str) -> str:
        """The counter key for a policy scope; without that identity, the network counts."""
        if scope == "user":
            value = self.user
        elif scope == "app":
            value = self.app
        elif scope == "client":
            value = self.client
        else:
            value = None
        if value is None:
            return f"ip:{self.network}"
        return f"{scope}:{value}"
