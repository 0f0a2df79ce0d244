"""Access control lists: grants to users or roles on one resource, deny overriding allow.

The evaluator is a pure function over plain data. The domain describes the caller
(:class:`Subject`), what the caller holds anyway on the resource (``baseline``, e.g.
from a channel role) and the resource's entries; it gets back the set of access
levels the caller has. It knows nothing about channels or messages.

Levels are ordered: ``read < write < moderate < manage``.

- An **allow** of a level grants that level and every level below it.
- A **deny** of a level removes that level and every level above it (no posting
  for whoever may not read).
- Denies win over allows and over the baseline, whatever the order of the entries.

So removing an allow never widens access and adding a deny never widens access
(both are checked by property tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    """An access level on a resource, weakest first."""

    READ = "read"
    WRITE = "write"
    MODERATE = "moderate"
    MANAGE = "manage"


class Effect(StrEnum):
    """What an entry does."""

    ALLOW = "allow"
    DENY = "deny"


ORDER: tuple[Level, ...] = (Level.READ, Level.WRITE, Level.MODERATE, Level.MANAGE)
_RANK = {level: i for i, level in enumerate(ORDER)}

USER_PREFIX = "user:"
ROLE_PREFIX = "role:"
EVERYONE = "*"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ACL entry: ``subject`` is ``user:<id>``, ``role:<app role>`` or ``*``."""

    subject: str
    level: Level
    effect: Effect


@dataclass(frozen=True, slots=True)
class Subject:
    """The caller as the evaluator sees it: a user id (or None) and app roles."""

    user_id: str | None
    roles: frozenset[str]

    def matches(self, subject: str) -> bool:
        """Whether an entry's subject names this caller."""
        if subject == EVERYONE:
            return True
        if subject.startswith(USER_PREFIX):
            return self.user_id is not None and subject[len(USER_PREFIX) :] == self.user_id
        if subject.startswith(ROLE_PREFIX):
            return subject[len(ROLE_PREFIX) :] in self.roles
        return False


def at_most(level: Level) -> frozenset[Level]:
    """``level`` and every weaker level (what an allow grants)."""
    return frozenset(ORDER[: _RANK[level] + 1])


def at_least(level: Level) -> frozenset[Level]:
    """``level`` and every stronger level (what a deny takes away)."""
    return frozenset(ORDER[_RANK[level] :])


def evaluate(
    subject: Subject, baseline: Iterable[Level], entries: Iterable[Entry]
) -> frozenset[Level]:
    """The levels ``subject`` holds on a resource: baseline and allows, minus denies."""
    allowed: set[Level] = set()
    for level in baseline:
        allowed |= at_most(level)
    denied: set[Level] = set()
    for entry in entries:
        if not subject.matches(entry.subject):
            continue
        if entry.effect is Effect.ALLOW:
            allowed |= at_most(entry.level)
        else:
            denied |= at_least(entry.level)
    return frozenset(allowed - denied)


def denied(subject: Subject, entries: Iterable[Entry]) -> frozenset[Level]:
    """The levels the entries' denies take from ``subject`` (to say why a level is missing)."""
    taken: set[Level] = set()
    for entry in entries:
        if entry.effect is Effect.DENY and subject.matches(entry.subject):
            taken |= at_least(entry.level)
    return frozenset(taken)


def valid_subject(subject: str) -> bool:
    """Whether ``subject`` has one of the three forms an entry may name."""
    return subject == EVERYONE or (
        subject.startswith((USER_PREFIX, ROLE_PREFIX)) and 0 < len(subject.split(":", 1)[1]) <= 40
    )
