"""The authorization server's services, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.observe.events import SecurityEvents
from bastion.security import lockout
from bastion.security.keys import KeyRing
from bastion.security.login import Logins, PasswordRules
from bastion.security.mfa_policy import MfaPolicies, MfaRule
from bastion.security.oauth.clients import ClientRegistry
from bastion.security.oauth.grants import Grants, Lifetimes
from bastion.security.oauth.interaction import Interactions
from bastion.security.passwords import SecretHasher
from bastion.security.tokens import AccessTokens
from bastion.store.db import Database


@dataclass(frozen=True, slots=True)
class AuthServer:
    """Clients, grants, logins, login interactions and the apps' MFA policies."""

    clients: ClientRegistry
    grants: Grants
    logins: Logins
    interactions: Interactions
    mfa_policies: MfaPolicies


def lockout_policy(settings: Settings) -> lockout.Policy:
    """The brute-force policy from the settings."""
    oauth = settings.oauth
    return lockout.Policy(
        enabled=oauth.brute_force,
        max_failures=oauth.max_login_failures,
        ip_max_failures=oauth.ip_max_login_failures,
        wait_increment=oauth.wait_increment_seconds,
        max_wait=oauth.max_wait_seconds,
        strategy=oauth.wait_strategy,
        failure_reset=oauth.failure_reset_seconds,
        quick_login_ms=oauth.quick_login_check_ms,
        min_quick_wait=oauth.min_quick_login_wait_seconds,
        permanent=oauth.permanent_lockout,
        max_temporary_lockouts=oauth.max_temporary_lockouts,
    )


def build(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    hasher: SecretHasher,
    tokens: AccessTokens,
    keys: KeyRing,
    events: SecurityEvents,
) -> AuthServer:
    """Wire the authorization server from the settings."""
    oauth = settings.oauth
    clients = ClientRegistry(
        db,
        hasher,
        clock,
        issuer=settings.issuer,
        assertion_max_lifetime=oauth.assertion_max_lifetime,
        leeway=settings.auth.leeway,
        mtls=settings.transport.mtls != "off",
    )
    grants = Grants(
        db,
        clock,
        tokens,
        keys,
        events,
        issuer=settings.issuer,
        lifetimes=Lifetimes(
            code=oauth.code_ttl,
            access=settings.auth.user_token_ttl,
            refresh_idle=oauth.refresh_idle_ttl,
            refresh_absolute=oauth.refresh_absolute_ttl,
        ),
    )
    logins = Logins(
        db,
        hasher,
        clock,
        events,
        policy=lockout_policy(settings),
        rules=PasswordRules(oauth.password_min_length, oauth.password_max_length),
        mfa_issuer=oauth.mfa_issuer,
    )
    mfa_policies = MfaPolicies(
        db,
        clock,
        events,
        floor=MfaRule(oauth.require_mfa, frozenset(oauth.require_mfa_roles)),
    )
    interactions = Interactions(
        db,
        clock,
        clients,
        logins,
        grants,
        events,
        issuer=settings.issuer,
        interaction_ttl=oauth.interaction_ttl,
        session_ttl=oauth.session_ttl,
        mfa_policies=mfa_policies,
    )
    return AuthServer(
        clients=clients,
        grants=grants,
        logins=logins,
        interactions=interactions,
        mfa_policies=mfa_policies,
    )
