"""Prefixed, sortable, opaque identifiers: ``usr_01JD…`` (a ULID after a kind prefix).

A ULID is 48 bits of millisecond time then 80 random bits, written as 26 characters of
Crockford's base32, so ids sort by creation time. Ids made by one process are strictly
increasing even within a millisecond; event resume cursors rely on that.
"""

from __future__ import annotations

import os
import re
import threading
import time
from enum import StrEnum


class Kind(StrEnum):
    """Every kind of object that has an id, and its prefix."""

    APP = "app"
    CLIENT = "cli"
    USER = "usr"
    CHANNEL = "ch"
    MESSAGE = "msg"
    EVENT = "evt"
    REQUEST = "req"
    TOKEN = "tok"
    CONNECTION = "conn"
    DATA_KEY = "dek"
    BACKUP = "bak"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_LENGTH = 26
_ULID_RE = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
_PATTERNS = {kind: re.compile(rf"{kind.value}_{_ULID_RE}") for kind in Kind}
_RANDOM_BITS = 80
_RANDOM_BYTES = _RANDOM_BITS // 8
# The operating system's random bytes, read this many at a time: one getrandom call per
# 400 ids instead of one per id.
_RANDOM_POOL = 4000


# Every pair of Crockford characters, indexed by the 10 bits they encode: an id is
# written in 13 steps instead of 26 (three ids are made per message sent).
_PAIRS = tuple(first + second for first in _CROCKFORD for second in _CROCKFORD)


def encode_ulid(value: int) -> str:
    """Write a 128-bit ULID value as its 26-character Crockford base32 text."""
    pairs = []
    for _ in range(_ULID_LENGTH // 2):
        pairs.append(_PAIRS[value & 0x3FF])
        value >>= 10
    return "".join(reversed(pairs))


class _MonotonicUlid:
    """ULID values that never repeat or go backwards within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._pool = b""
        self._used = 0

    def next(self) -> int:
        with self._lock:
            value = (time.time_ns() // 1_000_000) << _RANDOM_BITS | self._random()
            value = max(value, self._last + 1)
            self._last = value
        return value

    def forget(self) -> None:
        """Start afresh in a forked child: its own random bytes, and no last value to
        step from (two processes stepping from the same one would make the same id);
        a new lock, in case the fork came while another thread held the old one."""
        self._lock = threading.Lock()
        self._last = 0
        self._pool, self._used = b"", 0

    def _random(self) -> int:
        """80 bits from the operating system's random source (held under the lock)."""
        if self._used + _RANDOM_BYTES > len(self._pool):
            self._pool, self._used = os.urandom(_RANDOM_POOL), 0
        start, self._used = self._used, self._used + _RANDOM_BYTES
        return int.from_bytes(self._pool[start : self._used])


_generator = _MonotonicUlid()
os.register_at_fork(after_in_child=_generator.forget)


def new_id(kind: Kind) -> str:
    """Return a fresh id of the given kind."""
    return f"{kind.value}_{encode_ulid(_generator.next())}"


def is_id(kind: Kind, value: str) -> bool:
    """Tell whether ``value`` is a well-formed id of ``kind`` (no lookup is made)."""
    return _PATTERNS[kind].fullmatch(value) is not None


def pattern(kind: Kind) -> str:
    """Return the regular expression an id of ``kind`` must match (for schemas)."""
    return f"^{_PATTERNS[kind].pattern}$"
