"""Display names that could pass for someone else's (Unicode TR 39 confusables).

A word that mixes scripts and contains letters that look like letters of another
script ("paypal" with a Cyrillic U+0430 for the "a") is how impersonation starts. Each
word is checked on its own, so a full name in two scripts (Latin and Cyrillic) is fine.
The data comes from the Unicode confusables table via ``confusable_homoglyphs``.
"""

from __future__ import annotations

from confusable_homoglyphs import confusables


def looks_deceptive(name: str) -> bool:
    """Whether one word of ``name`` mixes scripts with look-alike characters."""
    return any(confusables.is_dangerous(word) for word in name.split())
