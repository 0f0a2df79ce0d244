"""Keyset pages that walk both ways: ``after`` a key for the next page, ``before`` it for
the previous one, each page in list order with a cursor to either side.

A repository supplies one fetch, ``fetch(after, before, limit)``: up to ``limit`` rows
in list order just after ``after`` or just before ``before`` (the first rows of the list
when both are None). A cursor is set only when a row lies that way, so a client stops
at the ends instead of asking for an empty page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bastion.core.errors import FieldError, ValidationFailed

Row = TypeVar("Row")
Key = TypeVar("Key")

Fetch = Callable[[Key | None, Key | None, int], Awaitable[list[Row]]]
"""``(after, before, limit)`` → up to ``limit`` rows in list order."""


@dataclass(frozen=True, slots=True)
class Page(Generic[Row, Key]):
    """Rows in list order; ``prev`` is the key to pass as ``before``, ``next`` as ``after``."""

    rows: list[Row]
    prev: Key | None
    next: Key | None


def one_direction(after: object | None, before: object | None) -> None:
    """A page is fetched after a cursor or before one, not both."""
    if after is not None and before is not None:
        raise ValidationFailed([FieldError("query", "Use either before or after, not both.")])


async def page_both_ways(
    fetch: Fetch[Key, Row],
    key: Callable[[Row], Key],
    *,
    after: Key | None,
    before: Key | None,
    limit: int,
) -> Page[Row, Key]:
    """The page after ``after``, before ``before``, or the first page of the list."""
    one_direction(after, before)
    backward = before is not None
    rows = await fetch(after, before, limit + 1)
    more = len(rows) > limit
    # One row beyond the page says whether more follow the way it was fetched.
    rows = rows[-limit:] if backward else rows[:limit]
    if not rows:
        return Page(rows, None, None)
    first, last = key(rows[0]), key(rows[-1])
    if backward:
        later = bool(await fetch(last, None, 1))
        return Page(rows, first if more else None, last if later else None)
    earlier = after is not None and bool(await fetch(None, first, 1))
    return Page(rows, first if earlier else None, last if more else None)
