"""Brute-force protection for logins, modelled on Keycloak's brute-force detector.

Counters are kept per account and per client address. After ``max_failures``
failures the account (or address) must wait: ``increment * floor(failures / max)``
("multiple") or ``increment * (1 + failures - max)`` ("linear"), capped at
``max_wait``. Two failures closer than the quick-login check impose at least the
minimum quick-login wait. Optionally, after ``max_temporary_lockouts`` temporary
lockouts, the account is locked until an administrator unlocks it. Counters reset
after ``failure_reset`` seconds without failures and on a successful login. While a
wait runs the counter is frozen, and a locked login is answered exactly like a wrong
password, so none of this reveals whether an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bastion.store.records import FailureRecord

GLOBAL = "*"


@dataclass(frozen=True, slots=True)
class Policy:
    """The brute-force settings (see ``OAuthSettings``)."""

    enabled: bool
    max_failures: int
    ip_max_failures: int
    wait_increment: int
    max_wait: int
    strategy: str
    failure_reset: int
    quick_login_ms: int
    min_quick_wait: int
    permanent: bool
    max_temporary_lockouts: int


def is_locked(record: FailureRecord | None, now: datetime) -> bool:
    """Whether a login must be refused without checking the password."""
    if record is None:
        return False
    if record.permanently_locked:
        return True
    return record.locked_until is not None and record.locked_until > now


def wait_seconds(policy: Policy, failures: int) -> int:
    """Keycloak's wait for ``failures`` failures (0 below the threshold)."""
    if failures < policy.max_failures:
        return 0
    if policy.strategy == "linear":
        wait = policy.wait_increment * (1 + failures - policy.max_failures)
    else:
        wait = policy.wait_increment * (failures // policy.max_failures)
    return min(wait, policy.max_wait)


def record_failure(
    policy: Policy,
    record: FailureRecord | None,
    *,
    app_id: str,
    subject: str,
    ip: str | None,
    now: datetime,
) -> FailureRecord:
    """The counters after one more failure."""
    if record is None or now - record.last_failure > timedelta(seconds=policy.failure_reset):
        record = FailureRecord(app_id, subject, 0, now, ip, None, 0, permanently_locked=False)
    if is_locked(record, now):
        return record  # frozen while locked
    quick = now - record.last_failure < timedelta(milliseconds=policy.quick_login_ms)
    failures = record.num_failures + 1
    wait = wait_seconds(policy, failures)
    if quick and record.num_failures > 0:
        wait = max(wait, policy.min_quick_wait)
    lockouts = record.temporary_lockouts + (1 if wait else 0)
    permanent = policy.permanent and wait > 0 and lockouts > policy.max_temporary_lockouts
    return replace(
        record,
        num_failures=failures,
        last_failure=now,
        last_ip=ip,
        locked_until=now + timedelta(seconds=wait) if wait else record.locked_until,
        temporary_lockouts=lockouts,
        permanently_locked=permanent,
    )
