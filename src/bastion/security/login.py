"""End-user login: password check with brute-force protection, and the TOTP factor.

Every failed login looks the same from outside: unknown user, wrong password,
deactivated user and locked account all run one argon2id verification (against a
dummy hash when there is nothing real to check) and return the same ``None``. The
reason is recorded only in the ``auth.login`` security event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.errors import (
    Conflict,
    FieldError,
    IntegrityFailure,
    NotFound,
    ValidationFailed,
)
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security import lockout, mfa, password_policy
from bastion.security.passwords import SecretHasher
from bastion.store.db import Database
from bastion.store.records import CredentialRecord, DuplicateKeyError, FailureRecord
from bastion.store.repos import authz as authz_repo
from bastion.store.repos import logins as repo
from bastion.store.repos import users as users_repo

_MAX_USERNAME = 255


def normalise(username: str) -> str:
    """Usernames compare case-insensitively and without surrounding space."""
    return username.strip().casefold()


@dataclass(frozen=True, slots=True)
class PasswordRules:
    """Length bounds for new passwords."""

    min_length: int
    max_length: int


class Logins:
    """Checks passwords and second factors; keeps the failure counters."""

    def __init__(
        self,
        db: Database,
        hasher: SecretHasher,
        clock: Clock,
        events: SecurityEvents,
        *,
        policy: lockout.Policy,
        rules: PasswordRules,
        mfa_issuer: str,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._clock = clock
        self._events = events
        self._policy = policy
        self._rules = rules
        self.mfa_issuer = mfa_issuer

    async def set_password(self, app_id: str, user_id: str, username: str, password: str) -> None:
        """Give a user a username and password (422 for a weak password, 409 if taken)."""
        name = normalise(username)
        if not name or len(name) > _MAX_USERNAME:
            raise ValidationFailed([FieldError("body.username", "must be 1-255 characters")])
        found = password_policy.problems(
            password,
            username=name,
            min_length=self._rules.min_length,
            max_length=self._rules.max_length,
        )
        if found:
            raise ValidationFailed([FieldError("body.password", f"password {p}") for p in found])
        # argon2id takes a tenth of a second or more: keep it off the event loop.
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        try:
            async with self._db.write() as conn:
                if await users_repo.get_user(conn, app_id, user_id) is None:
                    raise NotFound("No such user.")
                await repo.set_password(
                    conn,
                    app_id=app_id,
                    user_id=user_id,
                    username=name,
                    password_hash=password_hash,
                    now=self._clock.now(),
                )
        except DuplicateKeyError:
            raise Conflict("This username is taken.") from None
        await self._events.emit(
            "admin.change",
            "success",
            actor=Actor(app_id=app_id, subject=user_id),
            resource=f"user:{user_id}",
            details={"change": "password_set"},
        )

    async def check_password(
        self, app_id: str, username: str, password: str, origin: Origin
    ) -> str | None:
        """The user id when the password is right and nothing blocks the login; else None."""
        ip_key = f"ip:{origin.ip or 'unknown'}"
        async with self._db.read() as conn:
            cred = await repo.by_username(conn, app_id, normalise(username)[:_MAX_USERNAME])
            user = await users_repo.get_user(conn, app_id, cred.user_id) if cred else None
            account = await repo.get_failures(conn, app_id, cred.user_id) if cred else None
            by_ip = await repo.get_failures(conn, lockout.GLOBAL, ip_key)
        now = self._clock.now()
        locked = self._policy.enabled and (
            lockout.is_locked(account, now) or lockout.is_locked(by_ip, now)
        )
        usable = cred is not None and user is not None and user.active and not locked
        stored = cred.password_hash if usable and cred else None
        matched = await self._hasher.verify(stored, password[: self._rules.max_length * 4])
        if matched and cred is not None:
            await self._succeeded(app_id, cred.user_id, origin)
            return cred.user_id
        reason = (
            "unknown_user"
            if cred is None
            else "inactive_user"
            if user is None or not user.active
            else "locked"
            if locked
            else "bad_password"
        )
        await self._failed(app_id, cred, account, by_ip, ip_key, origin, reason)
        return None

    async def _succeeded(self, app_id: str, user_id: str, origin: Origin) -> None:
        async with self._db.write() as conn:
            await repo.clear_failures(conn, app_id, user_id)
        await self._events.emit(
            "auth.login",
            "success",
            actor=Actor(app_id=app_id, subject=user_id),
            origin=origin,
            details={"factor": "password"},
        )

    async def _failed(
        self,
        app_id: str,
        cred: CredentialRecord | None,
        account: FailureRecord | None,
        by_ip: FailureRecord | None,
        ip_key: str,
        origin: Origin,
        reason: str,
    ) -> None:
        subject = cred.user_id if cred else None
        await self._events.emit(
            "auth.login",
            "failure",
            actor=Actor(app_id=app_id, subject=subject),
            origin=origin,
            reason=reason,
        )
        if not self._policy.enabled or reason == "locked":
            return
        if cred is not None:
            await self._count(app_id, cred.user_id, account, origin, subject)
        await self._count(lockout.GLOBAL, ip_key, by_ip, origin, None)

    async def _count(
        self,
        app_id: str,
        key: str,
        before: FailureRecord | None,
        origin: Origin,
        subject: str | None,
    ) -> None:
        now = self._clock.now()
        policy = self._policy
        if key.startswith("ip:"):
            policy = _ip_policy(policy)
        after = lockout.record_failure(
            policy, before, app_id=app_id, subject=key, ip=origin.ip, now=now
        )
        async with self._db.write() as conn:
            await repo.save_failures(conn, after)
        if lockout.is_locked(after, now) and not lockout.is_locked(before, now):
            await self._events.emit(
                "auth.lockout",
                "denied",
                actor=Actor(app_id=None if app_id == lockout.GLOBAL else app_id, subject=subject),
                origin=origin,
                reason="permanent" if after.permanently_locked else "temporary",
                details={
                    "scope": "ip" if key.startswith("ip:") else "account",
                    "failures": after.num_failures,
                },
            )

    async def is_locked(self, app_id: str, user_id: str) -> bool:
        """Whether the account is locked right now."""
        async with self._db.read() as conn:
            record = await repo.get_failures(conn, app_id, user_id)
        return self._policy.enabled and lockout.is_locked(record, self._clock.now())

    async def unlock(self, app_id: str, user_id: str) -> None:
        """An administrator's unlock: forget the account's failures; 404 without a login."""
        async with self._db.write() as conn:
            if await repo.by_user(conn, app_id, user_id) is None:
                raise NotFound("This user has no login.")
            await repo.clear_failures(conn, app_id, user_id)

    # The second factor.

    async def credentials(self, app_id: str, user_id: str) -> CredentialRecord | None:
        """A user's credentials (for the MFA state)."""
        async with self._db.read() as conn:
            return await repo.by_user(conn, app_id, user_id)

    async def begin_enrolment(self, app_id: str, user_id: str) -> str:
        """Store a fresh, not yet confirmed TOTP secret (sealed) and return it."""
        secret = mfa.new_secret()
        async with self._db.write() as conn:
            await repo.set_totp_secret(conn, app_id, user_id, secret, enabled=False)
        return secret

    async def pending_secret(self, app_id: str, user_id: str) -> str | None:
        """The secret of an enrolment begun but not confirmed yet (None: begin one)."""
        cred = await self.credentials(app_id, user_id)
        if cred is None or not cred.has_totp_secret or cred.totp_enabled:
            return None
        return await self._secret(app_id, user_id, "mfa.enrol", None)

    async def _secret(
        self, app_id: str, user_id: str, action: str, origin: Origin | None
    ) -> str | None:
        """The user's TOTP secret; one that does not open (altered, or moved from another
        row) is recorded and treated as absent, so no code matches it."""
        try:
            async with self._db.read() as conn:
                return await repo.totp_secret(conn, app_id, user_id)
        except IntegrityFailure:
            await self._events.emit(
                action,
                "failure",
                actor=Actor(app_id=app_id, subject=user_id),
                origin=origin,
                reason="secret_unreadable",
            )
            return None

    async def confirm_enrolment(
        self, app_id: str, user_id: str, code: str, origin: Origin
    ) -> list[str] | None:
        """Turn TOTP on if ``code`` matches; return the new recovery codes (shown once)."""
        cred = await self.credentials(app_id, user_id)
        if cred is None or not cred.has_totp_secret or cred.totp_enabled:
            return None
        secret = await self._secret(app_id, user_id, "mfa.enrol", origin)
        step = mfa.matching_step(secret, code, self._clock.timestamp()) if secret else None
        actor = Actor(app_id=app_id, subject=user_id)
        if step is None:
            await self._events.emit("mfa.enrol", "failure", actor=actor, origin=origin)
            return None
        codes = mfa.new_recovery_codes()
        async with self._db.write() as conn:
            await repo.update_credentials(
                conn, app_id, user_id, totp_enabled=True, totp_last_step=step
            )
            await repo.replace_recovery_codes(
                conn, app_id, user_id, [mfa.recovery_hash(user_id, c) for c in codes]
            )
        await self._events.emit("mfa.enrol", "success", actor=actor, origin=origin)
        return codes

    async def check_second_factor(
        self, app_id: str, user_id: str, code: str, origin: Origin
    ) -> bool:
        """Accept a current TOTP code (each once) or an unused recovery code."""
        cred = await self.credentials(app_id, user_id)
        actor = Actor(app_id=app_id, subject=user_id)
        if cred is None or not cred.totp_enabled or not cred.has_totp_secret:
            return False
        if await self.is_locked(app_id, user_id):
            await self._events.emit(
                "mfa.verify", "failure", actor=actor, origin=origin, reason="locked"
            )
            return False
        secret = await self._secret(app_id, user_id, "mfa.verify", origin)
        step = mfa.matching_step(secret, code, self._clock.timestamp()) if secret else None
        now = self._clock.now()
        async with self._db.write() as conn:
            if step is not None:
                ok = await repo.use_totp_step(conn, app_id, user_id, step)
                kind = "totp"
            else:
                ok = await repo.use_recovery_code(
                    conn, app_id, user_id, mfa.recovery_hash(user_id, code), now
                )
                kind = "recovery_code"
        if ok:
            await self._events.emit(
                "mfa.verify", "success", actor=actor, origin=origin, details={"factor": kind}
            )
            return True
        await self._events.emit(
            "mfa.verify", "failure", actor=actor, origin=origin, reason="bad_code"
        )
        if self._policy.enabled:
            async with self._db.read() as conn:
                account = await repo.get_failures(conn, app_id, user_id)
            await self._count(app_id, user_id, account, origin, user_id)
        return False

    async def require_mfa(self, app_id: str, user_id: str, required: bool) -> None:
        """Make TOTP mandatory (or optional again) for one user; 404 without a login."""
        async with self._db.write() as conn:
            if await repo.by_user(conn, app_id, user_id) is None:
                raise NotFound("This user has no login; set a username and password first.")
            await repo.update_credentials(conn, app_id, user_id, mfa_required=required)
        await self._events.emit(
            "admin.change",
            "success",
            actor=Actor(app_id=app_id, subject=user_id),
            resource=f"user:{user_id}",
            details={"change": "mfa_required" if required else "mfa_optional"},
        )

    async def roles(self, app_id: str, user_id: str) -> frozenset[str]:
        """The user's app roles (a user without an assignment is a member)."""
        async with self._db.read() as conn:
            found = await authz_repo.get_user_roles(conn, app_id, user_id)
        return found if found is not None else frozenset({"member"})

    async def reset_mfa(self, app_id: str, user_id: str) -> None:
        """An administrator's reset: TOTP off, recovery codes gone; 404 without a login."""
        async with self._db.write() as conn:
            if await repo.by_user(conn, app_id, user_id) is None:
                raise NotFound("This user has no login.")
            await repo.update_credentials(
                conn, app_id, user_id, totp_secret=None, totp_enabled=False, totp_last_step=0
            )
            await repo.replace_recovery_codes(conn, app_id, user_id, [])


def _ip_policy(policy: lockout.Policy) -> lockout.Policy:
    """Per-address counters: their own threshold, never permanent."""
    return lockout.Policy(
        enabled=policy.enabled,
        max_failures=policy.ip_max_failures,
        ip_max_failures=policy.ip_max_failures,
        wait_increment=policy.wait_increment,
        max_wait=policy.max_wait,
        strategy=policy.strategy,
        failure_reset=policy.failure_reset,
        quick_login_ms=0,
        min_quick_wait=0,
        permanent=False,
        max_temporary_lockouts=policy.max_temporary_lockouts,
    )
