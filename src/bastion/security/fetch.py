"""Fetching JSON documents from identity providers, defensively (OWASP API10).

Discovery documents and key sets come from outside, so a slow, huge, redirecting or
plain-text provider must not stall or crash Bastion: HTTPS only (with certificate
checks), no redirects, one total deadline, a byte cap read as a stream, and a JSON
object or nothing. In the server, fetches go through the outbound guard, so a
``jwks_uri`` pointing at a private or metadata address is refused (SSRF). Plain
``http`` is allowed only for ``127.0.0.1`` and only when the test-only setting says so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from bastion.security.outbound import OutboundGuard, OutboundRefused


class FetchError(Exception):
    """The document could not be fetched or is not acceptable (the reason is in the text)."""


def check_url(url: str, *, allow_http_loopback: bool) -> None:
    """Refuse anything but an ``https`` URL without credentials or fragment."""
    parts = urlsplit(url)
    loopback_http = allow_http_loopback and parts.scheme == "http" and parts.hostname == "127.0.0.1"
    if parts.scheme != "https" and not loopback_http:
        raise FetchError(f"not an https URL: {url!r}")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise FetchError(f"unacceptable URL: {url!r}")


class JsonFetcher:
    """Fetches small JSON objects under a deadline and a size cap."""

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        allow_http_loopback: bool,
        guard: OutboundGuard | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.allow_http_loopback = allow_http_loopback
        self._guard = guard

    async def get(self, url: str) -> dict[str, Any]:
        """GET ``url`` and return its JSON object; raise ``FetchError`` on any problem."""
        check_url(url, allow_http_loopback=self.allow_http_loopback)
        try:
            async with asyncio.timeout(self._timeout):
                body = await (self._guarded(url) if self._guard else self._read(url))
        except OutboundRefused as exc:
            raise FetchError(f"{url}: {exc}") from exc
        except TimeoutError as exc:
            raise FetchError(f"{url}: no complete answer within {self._timeout} s") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}") from exc
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetchError(f"{url}: not JSON") from exc
        if not isinstance(document, dict):
            raise FetchError(f"{url}: not a JSON object")
        return document

    async def _guarded(self, url: str) -> bytes:
        """Through the outbound guard: only public addresses, pinned to the checked one."""
        assert self._guard is not None  # noqa: S101 - chosen by the caller above
        response = await self._guard.fetch(url, headers={"Accept": "application/json"})
        if response.status != 200:
            raise FetchError(f"{url}: HTTP {response.status}")
        return response.body

    async def _read(self, url: str) -> bytes:
        async with (
            httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise FetchError(f"{url}: larger than {self._max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise FetchError(f"{url}: larger than {self._max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)
