"""Envelope encryption of column values: per-owner data keys wrapped by per-app KEKs.

A value is sealed with AES-256-GCM under its owner's **data key** (DEK): one per
channel for message bodies, one per user for their personal data. DEKs are random, are
stored only wrapped by the app's current **KEK** (``KeySource.wrap``: the local keyring
or Vault Transit), and are kept unwrapped in memory for ``cache_seconds`` at most. The
stored form is ``e1.<dek id>.<base64(nonce ‖ ciphertext ‖ tag)>``; the associated data
names the app, table, column, row id and DEK id (``Cell.aad``), so a ciphertext copied
to any other cell, row or app fails to open.

Each channel also has an **index key** for the blind index of its messages' words
(``terms``): HMAC-SHA256 of each normalised word, truncated to 128 bits.
"""

from __future__ import annotations

import base64
import re
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.errors import IntegrityFailure
from bastion.core.ids import Kind, new_id
from bastion.observe.logging import get_logger
from bastion.security.crypto import aead
from bastion.security.crypto.errors import KeyUnavailable
from bastion.security.crypto.keysource import KeySource, call
from bastion.store.db import Connection
from bastion.store.repos import data_keys as repo
from bastion.store.sealing import SEALED_PREFIX, Cell, KeyDestroyed, Owner

_log = get_logger("bastion.crypto")
DATA = "data"
INDEX = "index"
_TERM_BYTES = 16
_WORD = re.compile(r"\w+", re.UNICODE)
MIN_TERM_CHARS = 2
MAX_TERM_CHARS = 64


def words(text: str) -> set[str]:
    """The normalised words of a text: NFKC, case-folded, 2 to 64 word characters."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    return {w for w in _WORD.findall(normal) if MIN_TERM_CHARS <= len(w) <= MAX_TERM_CHARS}


def key_aad(app_id: str, key_id: str, owner: Owner, purpose: str) -> bytes:
    """Associated data of a wrapped DEK: it cannot be moved to another owner or app."""
    return f"bastion/dek/v1|{app_id}|{key_id}|{owner.kind}|{owner.id}|{purpose}".encode()


@dataclass(slots=True)
class _Cached:
    key_id: str
    key: bytes
    expires: float


class EnvelopeCipher:
    """The ``ColumnCipher`` the store uses, with a bounded, short-lived DEK cache."""

    def __init__(
        self, keys: KeySource, clock: Clock, *, cache_seconds: float, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._by_id: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._active: dict[tuple[str, str, str, str], _Cached] = {}

    # -- the ColumnCipher protocol ---------------------------------------------------
    async def seal(self, conn: Connection, cell: Cell, owner: Owner, plaintext: str) -> str:
        """Seal under the owner's current data key (made on first use)."""
        key_id, key = await self._current(conn, cell.app_id, owner, DATA)
        sealed = aead.seal(key, plaintext.encode(), cell.aad(key_id))
        return f"{SEALED_PREFIX}{key_id}.{base64.b64encode(sealed).decode('ascii')}"

    async def open(self, conn: Connection, cell: Cell, stored: str) -> str:
        """Open a sealed value; ``IntegrityFailure`` if it was moved, altered or re-keyed."""
        try:
            key_id, blob = stored[len(SEALED_PREFIX) :].split(".", 1)
            raw = base64.b64decode(blob, validate=True)
            key = await self._key(conn, cell.app_id, key_id)
            return aead.unseal(key, raw, cell.aad(key_id)).decode()
        except (ValueError, aead.InvalidCiphertext, KeyUnavailable) as exc:
            # One opaque failure: the client is not told which check failed.
            _log.warning(
                "crypto.open_failed", table=cell.table, column=cell.column, row=cell.row_id
            )
            raise IntegrityFailure("A stored value could not be opened.") from exc

    async def terms(self, conn: Connection, app_id: str, channel_id: str, text: str) -> list[str]:
        """The blind-index terms of ``text`` under the channel's index key."""
        _, key = await self._current(conn, app_id, Owner("channel", channel_id), INDEX)
        return sorted(term(key, w) for w in words(text))

    async def query_terms(
        self, conn: Connection, app_id: str, channel_id: str, text: str
    ) -> list[str] | None:
        """Terms to look up in a channel; None if it has no index key (nothing indexed)."""
        record = await repo.newest_key(conn, app_id, Owner("channel", channel_id), INDEX)
        if record is None:
            return None
        key = await self._key(conn, app_id, record.id)
        return sorted(term(key, w) for w in words(text))

    # -- keys ------------------------------------------------------------------------
    async def rotate_owner(self, conn: Connection, app_id: str, owner: Owner) -> str:
        """Make a fresh data key the owner's current one (re-encryption)."""
        key_id, _ = await self._create(conn, app_id, owner, DATA)
        return key_id

    def forget_all(self) -> None:
        """Drop every cached key."""
        self._by_id.clear()
        self._active.clear()

    def forget(self, app_id: str, key_ids: list[str] | None = None) -> None:
        """Drop cached keys (after shredding or re-encryption in this process)."""
        for cache_key in list(self._by_id):
            if cache_key[0] == app_id and (key_ids is None or cache_key[1] in key_ids):
                del self._by_id[cache_key]
        for active_key in list(self._active):
            if active_key[0] == app_id:
                del self._active[active_key]

    async def _current(
        self, conn: Connection, app_id: str, owner: Owner, purpose: str
    ) -> tuple[str, bytes]:
        cache_key = (app_id, owner.kind, owner.id, purpose)
        cached = self._active.get(cache_key)
        if cached is not None and cached.expires > time.monotonic():
            return cached.key_id, cached.key
        record = await repo.newest_key(conn, app_id, owner, purpose)
        if record is None:
            key_id, key = await self._create(conn, app_id, owner, purpose)
        else:
            key_id, key = record.id, await self._unwrap(record)
        self._remember_active(cache_key, key_id, key)
        return key_id, key

    async def _create(
        self, conn: Connection, app_id: str, owner: Owner, purpose: str
    ) -> tuple[str, bytes]:
        key_id = new_id(Kind.DATA_KEY)
        key = aead.new_key()
        aad = key_aad(app_id, key_id, owner, purpose)
        version, wrapped = await call(self.keys, self.keys.wrap, app_id, key, aad)
        record = repo.DataKeyRecord(
            id=key_id,
            app_id=app_id,
            owner_kind=owner.kind,
            owner_id=owner.id,
            purpose=purpose,
            kek_version=version,
            wrapped=wrapped,
            created_at=self.clock.now(),
            destroyed_at=None,
        )
        await repo.insert_key(conn, record)
        self._remember_active((app_id, owner.kind, owner.id, purpose), key_id, key)
        return key_id, key

    async def _key(self, conn: Connection, app_id: str, key_id: str) -> bytes:
        cached = self._by_id.get((app_id, key_id))
        if cached is not None and cached.expires > time.monotonic():
            return cached.key
        record = await repo.get_key(conn, app_id, key_id)
        if record is None:
            raise aead.InvalidCiphertext
        if record.wrapped is None:
            raise KeyDestroyed(key_id)
        key = await self._unwrap(record)
        self._remember(app_id, key_id, key)
        return key

    async def _unwrap(self, record: repo.DataKeyRecord) -> bytes:
        if record.wrapped is None or self.keys.is_destroyed(record.id):
            raise KeyDestroyed(record.id)
        owner = Owner(record.owner_kind, record.owner_id)
        aad = key_aad(record.app_id, record.id, owner, record.purpose)
        keys = self.keys
        try:
            return await call(
                keys, keys.unwrap, record.app_id, record.kek_version, record.wrapped, aad
            )
        except KeyUnavailable:
            raise
        except aead.InvalidCiphertext:
            raise KeyUnavailable(f"data key {record.id} does not open under its KEK") from None

    def _remember(self, app_id: str, key_id: str, key: bytes) -> None:
        self._by_id[(app_id, key_id)] = _Cached(key_id, key, time.monotonic() + self.cache_seconds)
        self._by_id.move_to_end((app_id, key_id))
        while len(self._by_id) > self.cache_size:
            self._by_id.popitem(last=False)

    def _remember_active(
        self, cache_key: tuple[str, str, str, str], key_id: str, key: bytes
    ) -> None:
        self._active[cache_key] = _Cached(key_id, key, time.monotonic() + self.cache_seconds)
        if len(self._active) > self.cache_size:
            self._active.pop(next(iter(self._active)))
        self._remember(cache_key[0], key_id, key)


def term(key: bytes, word: str) -> str:
    """One blind-index term: HMAC-SHA256(index key, word), 128 bits, base64url."""
    digest = aead.index_hmac(key, word.encode())[:_TERM_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
