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
from collections.abc import Callable
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
    mac: Callable[[bytes], bytes] | None = None

    def fresh(self) -> bool:
        return self.expires > time.monotonic()

    def index_mac(self) -> Callable[[bytes], bytes]:
        """The index key's HMAC, keyed once and kept (and expired) with the key."""
        if self.mac is None:
            self.mac = aead.index_mac(self.key)
        return self.mac


class EnvelopeCipher:
    """The ``ColumnCipher`` the store uses, with a bounded, short-lived DEK cache.

    Unwrapped keys (and an index key's keyed HMAC state) stay in memory for at most
    ``cache_seconds`` and at most ``cache_size`` of them (least recently used go first),
    so a send costs no key lookup or unwrap. Python cannot zero memory: an expired or
    evicted key lingers until its bytes are collected; the TTL bounds how long it is used.
    """

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
        entry = await self._current(conn, cell.app_id, owner, DATA)
        sealed = aead.seal(entry.key, plaintext.encode(), cell.aad(entry.key_id))
        return f"{SEALED_PREFIX}{entry.key_id}.{base64.b64encode(sealed).decode('ascii')}"

    async def open(self, conn: Connection, cell: Cell, stored: str) -> str:
        """Open a sealed value; ``IntegrityFailure`` if it was moved, altered or re-keyed."""
        try:
            key_id, blob = stored[len(SEALED_PREFIX) :].split(".", 1)
            raw = base64.b64decode(blob, validate=True)
            entry = await self._key(conn, cell.app_id, key_id)
            return aead.unseal(entry.key, raw, cell.aad(key_id)).decode()
        except (ValueError, aead.InvalidCiphertext, KeyUnavailable) as exc:
            # One opaque failure: the client is not told which check failed.
            _log.warning(
                "crypto.open_failed", table=cell.table, column=cell.column, row=cell.row_id
            )
            raise IntegrityFailure("A stored value could not be opened.") from exc

    async def terms(self, conn: Connection, app_id: str, channel_id: str, text: str) -> list[str]:
        """The blind-index terms of ``text`` under the channel's index key."""
        entry = await self._current(conn, app_id, Owner("channel", channel_id), INDEX)
        return _terms(entry.index_mac(), text)

    async def query_terms(
        self, conn: Connection, app_id: str, channel_id: str, text: str
    ) -> list[str] | None:
        """Terms to look up in a channel; None if it has no index key (nothing indexed)."""
        record = await repo.newest_key(conn, app_id, Owner("channel", channel_id), INDEX)
        if record is None:
            return None
        entry = await self._key(conn, app_id, record.id)
        return _terms(entry.index_mac(), text)

    # -- keys ------------------------------------------------------------------------
    async def rotate_owner(self, conn: Connection, app_id: str, owner: Owner) -> str:
        """Make a fresh data key the owner's current one (re-encryption)."""
        return (await self._create(conn, app_id, owner, DATA)).key_id

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

    async def _current(self, conn: Connection, app_id: str, owner: Owner, purpose: str) -> _Cached:
        cached = self._active.get((app_id, owner.kind, owner.id, purpose))
        if cached is not None and cached.fresh():
            return cached
        record = await repo.newest_key(conn, app_id, owner, purpose)
        if record is None:
            return await self._create(conn, app_id, owner, purpose)
        key = await self._unwrap(record)
        return self._remember_active(app_id, owner, purpose, record.id, key)

    async def _create(self, conn: Connection, app_id: str, owner: Owner, purpose: str) -> _Cached:
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
        return self._remember_active(app_id, owner, purpose, key_id, key)

    async def _key(self, conn: Connection, app_id: str, key_id: str) -> _Cached:
        cached = self._by_id.get((app_id, key_id))
        if cached is not None and cached.fresh():
            self._by_id.move_to_end((app_id, key_id))
            return cached
        record = await repo.get_key(conn, app_id, key_id)
        if record is None:
            raise aead.InvalidCiphertext
        if record.wrapped is None:
            raise KeyDestroyed(key_id)
        return self._remember(app_id, _Cached(key_id, await self._unwrap(record), self._expiry()))

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

    def _expiry(self) -> float:
        return time.monotonic() + self.cache_seconds

    def _remember(self, app_id: str, entry: _Cached) -> _Cached:
        self._by_id[(app_id, entry.key_id)] = entry
        self._by_id.move_to_end((app_id, entry.key_id))
        while len(self._by_id) > self.cache_size:
            self._by_id.popitem(last=False)
        return entry

    def _remember_active(
        self, app_id: str, owner: Owner, purpose: str, key_id: str, key: bytes
    ) -> _Cached:
        entry = _Cached(key_id, key, self._expiry())
        self._active[(app_id, owner.kind, owner.id, purpose)] = entry
        if len(self._active) > self.cache_size:
            self._active.pop(next(iter(self._active)))
        return self._remember(app_id, entry)


def _terms(mac: Callable[[bytes], bytes], text: str) -> list[str]:
    """The sorted blind-index terms of ``text`` under an index key's HMAC."""
    return sorted(term(mac, w) for w in words(text))


def term(mac: Callable[[bytes], bytes], word: str) -> str:
    """One blind-index term: HMAC-SHA256(index key, word), 128 bits, base64url."""
    digest = mac(word.encode())[:_TERM_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
