"""The one guard for every URL the server fetches (webhooks, IdP metadata, JWKS).

A URL passes only if its scheme is https (http only when configured, for tests), it has
no user-info, its host is a name or a canonical IP literal (``0x7f000001``, ``2130706433``
and ``0177.0.0.1`` are refused outright), and **every** address the name resolves to is
public: not private, loopback, link-local (cloud metadata at 169.254.169.254), shared,
reserved, multicast or unspecified, for IPv4 and IPv6 alike, including IPv4 addresses
embedded in IPv6 (mapped, 6to4, Teredo, NAT64). The name is resolved once and the
connection goes to the address that was checked (TLS still verifies the name), so a
second DNS answer cannot point elsewhere. Redirects are followed by hand, each target
checked again, up to a limit; time and response size are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(Exception):
    """The URL, an address it resolves to, a redirect or the response broke the policy."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What the guard allows: schemes, extra networks, time, size and redirects."""

    allow_http: bool = False
    allow_networks: tuple[Network, ...] = ()
    timeout_seconds: float = 10.0
    max_bytes: int = 1_048_576
    max_redirects: int = 3

    @classmethod
    def of(
        cls,
        *,
        allow_http: bool,
        allow_networks: Sequence[str],
        timeout_seconds: float,
        max_bytes: int,
        max_redirects: int,
    ) -> OutboundPolicy:
        """Build a policy from configured values (networks as CIDR strings)."""
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)
        return cls(allow_http, networks, timeout_seconds, max_bytes, max_redirects)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect and what name to present."""

    url: str
    scheme: str
    host: str
    port: int
    address: Address


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """A fetched response, its body already read within the size limit."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: Address, allow: Sequence[Network] = ()) -> bool:
    """Whether the guard may connect to ``ip``."""
    if any(ip.version == net.version and ip in net for net in allow):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(is_public(v4, allow) for v4 in embedded)
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> Address | None:
    """The IP a host names literally; refuse the non-canonical forms resolvers accept."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]"))
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        raise OutboundRefused("the host is a non-canonical IP address")
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (one lookup)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OutboundRefused("the host does not resolve") from exc
    return [str(info[4][0]) for info in infos]


class OutboundGuard:
    """Checks URLs and fetches them under the policy."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self._resolve = resolver

    async def check(self, url: str) -> Target:
        """Parse, resolve and check ``url``; raise :class:`OutboundRefused` if not allowed."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.policy.allow_http):
            raise OutboundRefused(f"the scheme {scheme or '(none)'!r} is not allowed")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefused("URLs with user-info are not allowed")
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise OutboundRefused("the port is not valid") from exc
        if not host:
            raise OutboundRefused("the URL has no host")
        literal = _literal(host)
        texts = [str(literal)] if literal else await self._resolve(host, port)
        addresses = [ipaddress.ip_address(t.split("%", 1)[0]) for t in texts]
        if not addresses or not all(is_public(a, self.policy.allow_networks) for a in addresses):
            raise OutboundRefused("the host resolves to a non-public address")
        return Target(url, scheme, host, port, addresses[0])

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> OutboundResponse:
        """Fetch ``url`` within the policy, following checked redirects."""
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                return await self._follow(url, method, dict(headers or {}), content)
        except TimeoutError as exc:
            raise OutboundRefused("the fetch took too long") from exc
        except httpx.HTTPError as exc:
            raise OutboundRefused(f"the fetch failed: {type(exc).__name__}") from exc

    async def _follow(
        self, url: str, method: str, headers: dict[str, str], content: bytes | None
    ) -> OutboundResponse:
        timeout = httpx.Timeout(self.policy.timeout_seconds)
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout
        ) as client:
            for _ in range(self.policy.max_redirects + 1):
                target = await self.check(url)
                response = await self._once(client, target, method, headers, content)
                location = response.headers.get("location")
                if response.status not in _REDIRECTS or location is None:
                    return response
                url = urljoin(url, location)
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, content = "GET", None
        raise OutboundRefused("too many redirects")

    async def _once(
        self,
        client: httpx.AsyncClient,
        target: Target,
        method: str,
        headers: dict[str, str],
        content: bytes | None,
    ) -> OutboundResponse:
        parts = urlsplit(target.url)
        ip = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        direct = parts._replace(netloc=f"{ip}:{target.port}").geturl()
        host = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        request = client.build_request(
            method,
            direct,
            headers={**headers, "Host": host},
            content=content,
            extensions={"sni_hostname": target.host},
        )
        response = await client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.policy.max_bytes:
                    raise OutboundRefused("the response is too large")
        finally:
            await response.aclose()
        return OutboundResponse(target.url, response.status_code, response.headers, bytes(body))
