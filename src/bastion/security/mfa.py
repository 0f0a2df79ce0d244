"""TOTP second factor (RFC 6238 via pyotp), recovery codes and the enrolment QR code."""

from __future__ import annotations

import hashlib
import secrets

import pyotp
import segno

RECOVERY_CODES = 10
_STEP = 30
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    """A fresh 160-bit base32 TOTP secret (RFC 4226 §4 recommends 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI authenticator apps scan."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no script, no external image)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, title="TOTP enrolment QR code"))


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for (now ±1 step), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // _STEP
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.at(step * _STEP), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten single-use recovery codes, ``xxxxx-xxxxx`` (about 49 bits each)."""
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_hash(user_id: str, code: str) -> str:
    """The stored form of a recovery code, bound to its user."""
    normalised = code.strip().lower().replace(" ", "")
    return hashlib.sha256(f"{user_id}:{normalised}".encode()).hexdigest()
