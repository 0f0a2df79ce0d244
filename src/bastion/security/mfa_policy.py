"""Who must use a second factor at login: the server's floor and each app's own policy.

The server-wide settings (``oauth.require_mfa``, ``oauth.require_mfa_roles``) are a
floor: an app adds to them through the admin API (everyone, or the holders of some app
roles) and can never take anything away, because the rule applied at login is the
union of both. A client registered with ``require_mfa`` and a user marked
``mfa_required`` add to it again, at login.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.errors import FieldError, ValidationFailed
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security.policy import AppRole, Policy
from bastion.store.db import Database
from bastion.store.repos import authz as authz_repo
from bastion.store.repos import mfa_policies as repo


@dataclass(frozen=True, slots=True)
class MfaRule:
    """Everyone must use TOTP, or the holders of ``roles`` must."""

    everyone: bool = False
    roles: frozenset[str] = frozenset()

    def with_floor(self, floor: MfaRule) -> MfaRule:
        """This rule raised to at least ``floor`` (the union of both)."""
        return MfaRule(self.everyone or floor.everyone, self.roles | floor.roles)

    def applies_to(self, roles: frozenset[str]) -> bool:
        """Whether a user holding ``roles`` must use a second factor."""
        return self.everyone or bool(self.roles & roles)

    def describe(self) -> str:
        """A short plain form for audit events (``everyone`` or ``roles:a,b`` or ``none``)."""
        if self.everyone:
            return "everyone"
        return f"roles:{','.join(sorted(self.roles))}" if self.roles else "none"


@dataclass(frozen=True, slots=True)
class AppMfaPolicy:
    """An app's MFA policy as the admin API shows it."""

    own: MfaRule
    floor: MfaRule

    @property
    def effective(self) -> MfaRule:
        """What login enforces: the app's rule raised to the server's floor."""
        return self.own.with_floor(self.floor)


class MfaPolicies:
    """Reads and changes the apps' MFA policies; every change is an audited event."""

    def __init__(self, db: Database, clock: Clock, events: SecurityEvents, floor: MfaRule) -> None:
        self._db = db
        self._clock = clock
        self._events = events
        self.floor = floor

    async def get(self, app_id: str) -> AppMfaPolicy:
        """The app's own rule and the server's floor."""
        async with self._db.read() as conn:
            record = await repo.get_policy(conn, app_id)
        own = MfaRule(record.everyone, record.roles) if record else MfaRule()
        return AppMfaPolicy(own, self.floor)

    async def set(self, app_id: str, rule: MfaRule, actor: Actor, origin: Origin) -> AppMfaPolicy:
        """Replace the app's rule (422 for a role the app does not define)."""
        async with self._db.write() as conn:
            overrides = await authz_repo.get_policy_overrides(conn, app_id)
            defined = set(Policy.with_overrides(overrides).roles()) - {AppRole.SERVICE.value}
            unknown = sorted(rule.roles - defined)
            if unknown:
                raise ValidationFailed(
                    [FieldError("body.required_roles", f"No such role: {unknown[0]}")]
                )
            found = await repo.get_policy(conn, app_id)
            before = MfaRule(found.everyone, found.roles) if found else MfaRule()
            await repo.save_policy(
                conn, app_id, everyone=rule.everyone, roles=rule.roles, now=self._clock.now()
            )
            # Inside the transaction: the audit log records the change with it, or neither.
            await self._events.emit(
                "admin.change",
                "success",
                actor=actor,
                origin=origin,
                resource=f"app:{app_id}",
                details={
                    "change": "mfa_policy",
                    "before": before.describe(),
                    "after": rule.describe(),
                    "floor": self.floor.describe(),
                },
            )
        return AppMfaPolicy(rule, self.floor)

    async def effective(self, app_id: str) -> MfaRule:
        """The rule login enforces for the app's users."""
        return (await self.get(app_id)).effective
