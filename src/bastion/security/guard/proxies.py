"""The client address, from ``Forwarded`` / ``X-Forwarded-For`` only via trusted proxies.

When the direct peer is a configured proxy, the forwarding chain is walked from the
right (the hop nearest to us) past every trusted proxy; the first untrusted address
is the client. From any other peer the headers are ignored: a client cannot choose
the address it is counted and logged under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, header

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...] | None:
    """Read ``"127.0.0.1, 10.0.0.0/8"``; ``"*"`` (trust every peer) gives None."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if "*" in items:
        return None
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str) -> str | None:
    """An address from a chain element: strips quotes, brackets and ports."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def forwarded_chain(scope: Scope) -> list[str | None] | None:
    """The addresses named by ``Forwarded`` (RFC 7239), else by ``X-Forwarded-For``."""
    forwarded = header(scope, b"forwarded")
    if forwarded is not None:
        chain: list[str | None] = []
        for element in forwarded.decode("latin-1").split(","):
            pairs = (p.partition("=") for p in element.split(";"))
            found = [_address(v) for k, _, v in pairs if k.strip().lower() == "for"]
            chain.append(found[0] if found else None)
        return chain
    xff = header(scope, b"x-forwarded-for")
    if xff is not None:
        return [_address(part) for part in xff.decode("latin-1").split(",")]
    return None


def is_trusted(address: str | None, trusted: tuple[Network, ...] | None) -> bool:
    """Whether ``address`` is in the ``trusted`` networks (None: every peer is)."""
    if address is None:
        return False
    if trusted is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class TrustedProxies:
    """Rewrites ``scope["client"]`` to the real client when a trusted proxy forwarded it."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = parse_networks(trusted)

    def is_trusted(self, address: str | None) -> bool:
        """Whether ``address`` is a configured proxy."""
        return is_trusted(address, self.trusted)

    def client_of(self, peer: str | None, chain: Iterable[str | None] | None) -> str | None:
        """The client address for a peer and the chain it forwarded."""
        if chain is None or not self.is_trusted(peer):
            return peer
        client = peer
        for hop in reversed(list(chain)):
            if hop is None:
                return client  # an obfuscated or malformed hop: trust nothing beyond it
            client = hop
            if not self.is_trusted(hop):
                return hop
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Resolve the client address, then pass the request on."""
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            host = peer[0] if peer else None
            client = self.client_of(host, forwarded_chain(scope))
            if client is not None and client != host:
                scope["client"] = (client, 0)
        await self.app(scope, receive, send)
