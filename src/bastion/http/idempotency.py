"""``Idempotency-Key`` for requests that create (IETF httpapi idempotency-key draft).

A retry with the same key and the same request gets the original response, marked
``Idempotent-Replayed: true``, and creates nothing new; the same key with a different
request is 422; the same key while the first request is still running is 409. Keys
belong to the caller (app and token subject) and are kept for
``server.idempotency_ttl_seconds``. Only successful answers are stored, so a request
that failed can be retried with its key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response

from bastion.core.clock import Clock
from bastion.core.errors import Conflict, FieldError, InvalidRequest, ValidationFailed
from bastion.security.principal import Principal
from bastion.store.db import Database
from bastion.store.records import DuplicateKeyError
from bastion.store.repos import cross_tenant
from bastion.store.repos import idempotency as repo

_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_KEPT_HEADERS = ("content-type", "location", "etag")
_PURGE_EVERY = 500

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A unique key per operation: a retry with it returns the first response.",
    ),
]


class Idempotency:
    """Replays stored answers and tracks keyed requests in progress in this process."""

    def __init__(self, db: Database, clock: Clock, ttl_seconds: int) -> None:
        self._db = db
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._in_flight: set[tuple[str, str, str]] = set()
        self._stored = 0

    async def once(
        self,
        request: Request,
        caller: Principal,
        key: str | None,
        run: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Run ``run`` at most once per caller and key; replay its answer afterwards."""
        if key is None:
            return await run()
        if not _KEY.fullmatch(key):
            raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.")
        ident = (caller.app_id, caller.subject, key)
        digest = await _fingerprint(request)
        # Claim the key before reading: a read that starts while another request
        # holds the key may finish after that request stored its answer and left.
        if ident in self._in_flight:
            raise Conflict("A request with this Idempotency-Key is still in progress.")
        self._in_flight.add(ident)
        try:
            async with self._db.read() as conn:
                stored = await repo.get(conn, *ident)
            if stored is not None:
                return _replay(stored, digest)
            response = await run()
            if 200 <= response.status_code < 300:
                await self._store(ident, digest, response)
            return response
        finally:
            self._in_flight.discard(ident)

    async def _store(self, ident: tuple[str, str, str], digest: str, response: Response) -> None:
        headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
        stored = repo.StoredResponse(
            request_hash=digest,
            status=response.status_code,
            body=bytes(response.body).decode("utf-8"),
            headers=json.dumps(headers),
        )
        now = self._clock.now()
        try:
            async with self._db.write() as conn:
                await repo.put(conn, *ident, stored, now)
        except DuplicateKeyError:
            return  # another process stored the same key first; either answer stands
        self._stored += 1
        if self._stored % _PURGE_EVERY == 0:
            async with self._db.write() as conn:
                await cross_tenant.forget_idempotency_keys_before(conn, now - self._ttl)


async def _fingerprint(request: Request) -> str:
    """The same key must come with the same method, path and body."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()


def _replay(stored: repo.StoredResponse, digest: str) -> Response:
    if stored.request_hash != digest:
        message = "This key was already used for a different request."
        raise ValidationFailed([FieldError("header.Idempotency-Key", message)], detail=message)
    headers = {**json.loads(stored.headers), "Idempotent-Replayed": "true"}
    return Response(stored.body.encode("utf-8"), status_code=stored.status, headers=headers)
