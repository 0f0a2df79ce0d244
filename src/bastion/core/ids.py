"""Prefixed, sortable, opaque identifiers: ``usr_01JD…`` (a ULID after a kind prefix).

Ids made by one process are strictly increasing even within a millisecond, so an
id's order is its creation order; that is what event resume cursors rely on.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from enum import StrEnum

from ulid import ULID


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


_ULID_RE = "[0-9A-HJKMNP-TV-Z]{26}"
_PATTERNS = {kind: re.compile(rf"^{kind.value}_{_ULID_RE}$") for kind in Kind}
_RANDOM_BITS = 80


class _MonotonicUlid:
    """ULIDs that never repeat or go backwards within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> ULID:
        value = (time.time_ns() // 1_000_000) << _RANDOM_BITS | secrets.randbits(_RANDOM_BITS)
        with self._lock:
            value = max(value, self._last + 1)
            self._last = value
        return ULID.from_int(value)


_generator = _MonotonicUlid()


def new_id(kind: Kind) -> str:
    """Return a fresh id of the given kind."""
    return f"{kind.value}_{_generator.next()}"


def is_id(kind: Kind, value: str) -> bool:
    """Tell whether ``value`` is a well-formed id of ``kind`` (no lookup is made)."""
    return _PATTERNS[kind].fullmatch(value) is not None


def pattern(kind: Kind) -> str:
    """Return the regular expression an id of ``kind`` must match (for schemas)."""
    return _PATTERNS[kind].pattern
