"""Authorization codes, refresh-token families and the tokens they issue.

A *grant* is what one login gave one client: its scope, the time of authentication,
and an absolute expiry. The authorization code and every refresh token issued from
it belong to the grant. Rules (RFC 6749 §4.1.2, §10.4; RFC 9700 §2.2.2, §4.14):

- a code is single use and short lived; a second redemption revokes the grant;
- a refresh token is rotated on every use; presenting a rotated one revokes the
  grant (the whole family) and records ``token.reuse_detected``;
- refresh tokens die when idle and when the grant reaches its absolute expiry;
- revoking a grant revokes the access tokens it issued.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bastion.core.clock import Clock
from bastion.core.errors import OAuthError, Unavailable
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security import scopes as scope_names
from bastion.security.keys import KeyRing
from bastion.security.oauth import oidc, rfc7636
from bastion.security.oauth.clients import Client
from bastion.security.tokens import AccessTokens, IssuedToken
from bastion.store.db import Database
from bastion.store.records import GrantRecord
from bastion.store.repos import cross_tenant
from bastion.store.repos import oauth as repo

_CODE_BYTES = 32
_REFRESH_BYTES = 32


def digest(secret: str) -> str:
    """The stored form of a code, refresh token or session id: hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long codes, access tokens and refresh tokens live, in seconds."""

    code: int
    access: int
    refresh_idle: int
    refresh_absolute: int


@dataclass(frozen=True, slots=True)
class Authorization:
    """What the user approved, ready to become a code."""

    client: Client
    user_id: str
    redirect_uri: str
    scope: frozenset[str]
    code_challenge: str
    nonce: str | None
    auth_time: datetime
    amr: tuple[str, ...]


class Grants:
    """Issues codes; redeems and refreshes them into tokens; revokes families."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        tokens: AccessTokens,
        keys: KeyRing,
        events: SecurityEvents,
        *,
        issuer: str,
        lifetimes: Lifetimes,
    ) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self._keys = keys
        self._events = events
        self._issuer = issuer
        self._life = lifetimes

    async def issue_code(self, approved: Authorization) -> str:
        """Create the grant and its authorization code; return the code."""
        code = secrets.token_urlsafe(_CODE_BYTES)
        now = self._clock.now()
        grant_id = secrets.token_hex(16)
        client = approved.client
        async with self._db.write() as conn:
            await repo.insert_grant(
                conn,
                {
                    "id": grant_id,
                    "app_id": client.app_id,
                    "client_id": client.id,
                    "user_id": approved.user_id,
                    "scope": scope_names.render(approved.scope),
                    "auth_time": approved.auth_time,
                    "amr": " ".join(approved.amr),
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=self._life.refresh_absolute),
                    "revoked_at": None,
                },
            )
            await repo.insert_code(
                conn,
                {
                    "code_hash": digest(code),
                    "grant_id": grant_id,
                    "app_id": client.app_id,
                    "client_id": client.id,
                    "user_id": approved.user_id,
                    "redirect_uri": approved.redirect_uri,
                    "scope": scope_names.render(approved.scope),
                    "code_challenge": approved.code_challenge,
                    "nonce": approved.nonce,
                    "expires_at": now + timedelta(seconds=self._life.code),
                    "used_at": None,
                },
            )
        return code

    async def redeem_code(
        self,
        client: Client,
        params: Mapping[str, str],
        origin: Origin | None = None,
        *,
        jkt: str | None = None,
        x5t: str | None = None,
    ) -> dict[str, Any]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6: exchange a code for tokens."""
        code = params.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is required.")
        now = self._clock.now()
        async with self._db.write() as conn:
            record, first = await repo.claim_code(conn, digest(code), now)
        if record is None:
            raise _invalid_grant("The authorization code is invalid.")
        actor = Actor(app_id=record.app_id, subject=record.user_id, client_id=client.id)
        if not first or record.client_id != client.id or record.app_id != client.app_id:
            # A code presented twice (or by another client) has leaked: kill its grant.
            await self.revoke_grant(
                record.app_id, record.grant_id, "code_reuse", actor=actor, origin=origin
            )
            raise _invalid_grant("The authorization code is invalid.")
        if record.expires_at <= now:
            raise _invalid_grant("The authorization code has expired.")
        if params.get("redirect_uri") != record.redirect_uri:
            raise _invalid_grant("redirect_uri does not match the authorization request.")
        if not rfc7636.verify(params.get("code_verifier"), record.code_challenge):
            raise _invalid_grant("The code_verifier does not match the code_challenge.")
        grant = await self._live_grant(record.app_id, record.grant_id)
        body = await self._issue(client, grant, grant.scope, nonce=record.nonce, jkt=jkt, x5t=x5t)
        await self._emit("token.issue", actor, origin, grant="authorization_code")
        return body

    async def refresh(
        self,
        client: Client,
        params: Mapping[str, str],
        origin: Origin | None = None,
        *,
        jkt: str | None = None,
        x5t: str | None = None,
    ) -> dict[str, Any]:
        """RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2)."""
        presented = params.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required.")
        token_hash = digest(presented)
        async with self._db.read() as conn:
            record = await repo.get_refresh(conn, token_hash)
        if record is None:
            raise _invalid_grant("The refresh token is invalid.")
        grant = await self._grant(record.app_id, record.grant_id)
        if grant is None or grant.client_id != client.id or grant.app_id != client.app_id:
            raise _invalid_grant("The refresh token is invalid.")
        actor = Actor(app_id=grant.app_id, subject=grant.user_id, client_id=client.id)
        now = self._clock.now()
        async with self._db.write() as conn:
            first = record.rotated_at is None and await repo.rotate_refresh(
                conn, grant.app_id, token_hash, now
            )
        if not first:
            await self._emit("token.reuse_detected", actor, origin, outcome="denied")
            await self.revoke_grant(
                grant.app_id, grant.id, "refresh_reuse", actor=actor, origin=origin
            )
            raise _invalid_grant("The refresh token is invalid.")
        if record.expires_at <= now or grant.expires_at <= now or grant.revoked_at is not None:
            raise _invalid_grant("The refresh token has expired or was revoked.")
        scope = self._narrowed(grant, params.get("scope"))
        scope_text = scope_names.render(scope)
        body = await self._issue(client, grant, scope_text, nonce=None, jkt=jkt, x5t=x5t)
        await self._emit("token.refresh", actor, origin)
        return body

    @staticmethod
    def _narrowed(grant: GrantRecord, requested: str | None) -> frozenset[str]:
        """§6: a refresh may ask for less than the grant, never more."""
        granted = scope_names.parse(grant.scope)
        wanted = scope_names.parse(requested)
        if not wanted:
            return granted
        if not wanted <= granted:
            raise OAuthError("invalid_scope", "The scope exceeds what was granted.")
        return wanted

    async def _grant(self, app_id: str, grant_id: str) -> GrantRecord | None:
        async with self._db.read() as conn:
            return await repo.get_grant(conn, app_id, grant_id)

    async def _live_grant(self, app_id: str, grant_id: str) -> GrantRecord:
        grant = await self._grant(app_id, grant_id)
        if grant is None or grant.revoked_at is not None:
            raise _invalid_grant("The grant was revoked.")
        return grant

    async def _issue(
        self,
        client: Client,
        grant: GrantRecord,
        scope: str,
        *,
        nonce: str | None,
        jkt: str | None = None,
        x5t: str | None = None,
    ) -> dict[str, Any]:
        scopes = scope_names.parse(scope)
        access = self._tokens.issue(
            app_id=grant.app_id,
            client_id=client.id,
            subject=grant.user_id,
            scopes=scopes - {oidc.OPENID},
            ttl=self._life.access,
            jkt=jkt,
            x5t=x5t,
        )
        refresh = await self._new_refresh(grant, access)
        body: dict[str, Any] = {
            "access_token": access.token,
            # RFC 9449 §5.1: a token bound to a DPoP key is of type DPoP.
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": access.expires_in,
            "refresh_token": refresh,
            "scope": scope_names.render(scopes),
        }
        if oidc.OPENID in scopes:
            body["id_token"] = oidc.id_token(
                self._keys,
                issuer=self._issuer,
                client_id=client.id,
                subject=grant.user_id,
                now=int(self._clock.timestamp()),
                ttl=self._life.access,
                auth_time=int(grant.auth_time.timestamp()),
                amr=grant.amr.split(),
                nonce=nonce,
            )
        return body

    async def _new_refresh(self, grant: GrantRecord, access: IssuedToken) -> str:
        token = secrets.token_urlsafe(_REFRESH_BYTES)
        now = self._clock.now()
        idle_end = now + timedelta(seconds=self._life.refresh_idle)
        async with self._db.write() as conn:
            await repo.insert_refresh(
                conn,
                {
                    "token_hash": digest(token),
                    "grant_id": grant.id,
                    "app_id": grant.app_id,
                    "created_at": now,
                    "expires_at": min(idle_end, grant.expires_at),
                    "rotated_at": None,
                    "access_jti": access.principal.token_id,
                    "access_expires_at": datetime.fromtimestamp(
                        access.principal.expires_at, tz=now.tzinfo
                    ),
                },
            )
        return token

    async def revoke_grant(
        self,
        app_id: str,
        grant_id: str,
        reason: str,
        *,
        actor: Actor | None = None,
        origin: Origin | None = None,
    ) -> None:
        """Revoke an app's grant: its refresh tokens and every unexpired access token it
        issued."""
        now = self._clock.now()
        async with self._db.write() as conn:
            newly = await repo.revoke_grant(conn, app_id, grant_id, now)
            issued = await repo.grant_access_tokens(conn, app_id, grant_id, now)
            for jti, expires_at in issued:
                await repo.revoke_token(conn, jti, app_id, expires_at, now)
        for jti, expires_at in issued:
            self._tokens.revocations.revoke_token(jti, int(expires_at.timestamp()), app_id=app_id)
        if newly:
            await self._emit("token.revoke", actor, origin, reason=reason, kind="grant")

    async def revoke_access_token(self, jti: str, app_id: str, expires_at: int) -> None:
        """Refuse one access token from now on, on this node and after restarts."""
        now = self._clock.now()
        expiry = datetime.fromtimestamp(expires_at, tz=now.tzinfo)
        async with self._db.write() as conn:
            await repo.revoke_token(conn, jti, app_id, expiry, now)
        self._tokens.revocations.revoke_token(jti, expires_at, app_id=app_id)

    async def refresh_state(self, presented: str) -> tuple[GrantRecord, datetime] | None:
        """The live grant and expiry of a usable refresh token, or None."""
        async with self._db.read() as conn:
            record = await repo.get_refresh(conn, digest(presented))
            grant = await repo.get_grant(conn, record.app_id, record.grant_id) if record else None
        now = self._clock.now()
        if record is None or grant is None or record.rotated_at is not None:
            return None
        if grant.revoked_at is not None or min(record.expires_at, grant.expires_at) <= now:
            return None
        return grant, min(record.expires_at, grant.expires_at)

    async def _emit(
        self,
        action: str,
        actor: Actor | None,
        origin: Origin | None,
        *,
        outcome: str = "success",
        reason: str | None = None,
        **details: str,
    ) -> None:
        await self._events.emit(
            action,
            "denied" if outcome == "denied" else "success",
            actor=actor,
            origin=origin,
            reason=reason,
            details=details,
        )


class RevocationSync:
    """Keeps this server's revocation list in step with the revoked-token table.

    ``load`` reads every unexpired revocation (at start, before any token is accepted);
    ``keep_loading`` then re-reads those made since, by this or any other server, so a
    revocation takes effect everywhere within one interval.
    """

    # Clocks of different servers disagree a little: look back this far each time.
    _OVERLAP = timedelta(seconds=60)

    def __init__(self, db: Database, tokens: AccessTokens, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock
        self._since: datetime | None = None
        self._seen: dict[str, datetime] = {}

    async def load(self) -> None:
        """Read the revocations made since the last call (all of them the first time)."""
        now = self._clock.now()
        since = self._since - self._OVERLAP if self._since is not None else None
        async with self._db.read() as conn:
            rows = await cross_tenant.revoked_tokens_since(conn, since, now)
        for jti, app_id, expires_at, revoked_at in rows:
            if jti not in self._seen:
                self._seen[jti] = expires_at
                self._tokens.revocations.revoke_token(
                    jti, int(expires_at.timestamp()), app_id=app_id or None
                )
            self._since = max(self._since or revoked_at, revoked_at)
        self._since = self._since or now
        self._seen = {jti: exp for jti, exp in self._seen.items() if exp > now}

    async def keep_loading(self, interval: float) -> None:
        """Re-read every ``interval`` seconds, forever; a failed read is retried next time."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Unavailable:
                continue
