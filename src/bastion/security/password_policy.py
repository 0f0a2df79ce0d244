"""Password rules for end-user logins (ASVS 5.0 V6.2).

At least ``min_length`` characters (8 or more), up to ``max_length`` (64 or more) so
pass phrases fit; any characters; no composition rules; and not one of the 30,000
most common passwords (zxcvbn's list, which contains ASVS 6.2.4's top 3,000), nor the
username itself.
"""

from __future__ import annotations

import functools

from zxcvbn.frequency_lists import FREQUENCY_LISTS


@functools.cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def problems(password: str, *, username: str, min_length: int, max_length: int) -> list[str]:
    """Why a password is refused; an empty list when it is acceptable."""
    found = []
    if len(password) < min_length:
        found.append(f"must be at least {min_length} characters")
    if len(password) > max_length:
        found.append(f"must be at most {max_length} characters")
    lowered = password.lower()
    if lowered in _common():
        found.append("is one of the most commonly used passwords")
    if username and lowered == username.lower():
        found.append("must not be the username")
    return found
