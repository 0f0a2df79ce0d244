"""The login interaction of the authorization-code flow, step by step.

An authorization request that needs the user becomes an *interaction*: a row with
a random id, bound to the browser that started it (the hash of a cookie value) and
carrying its own CSRF token. It moves through stages: ``login`` (password),
``mfa`` (TOTP or recovery code) or ``enrol`` (first TOTP set-up), ``consent`` (for
third-party clients); and ends by issuing the authorization code. A successful
login also opens a browser session, so the next request can skip the password.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bastion.core.clock import Clock
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security import scopes as scope_names
from bastion.security.login import Logins
from bastion.security.mfa_policy import MfaPolicies
from bastion.security.oauth.authorize import AuthorizationRequest, PageError, redirect_to
from bastion.security.oauth.clients import Client, ClientRegistry
from bastion.security.oauth.grants import Authorization, Grants, digest
from bastion.store.db import Database
from bastion.store.records import CredentialRecord, InteractionRecord, SessionRecord
from bastion.store.repos import oauth as repo

LOGIN = "login"
MFA = "mfa"
ENROL = "enrol"
CONSENT = "consent"
_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Step:
    """Where the browser goes next: a stage page of an interaction, or the client."""

    stage: str | None
    interaction_id: str | None = None
    redirect: str | None = None
    app_id: str | None = None
    user_id: str | None = None
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pending:
    """A loaded interaction with its request and client."""

    record: InteractionRecord
    request: AuthorizationRequest
    client: Client


class Interactions:
    """Runs interactions: start, advance through the stages, finish with a code."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        clients: ClientRegistry,
        logins: Logins,
        grants: Grants,
        events: SecurityEvents,
        *,
        issuer: str,
        interaction_ttl: int,
        session_ttl: int,
        mfa_policies: MfaPolicies,
    ) -> None:
        self._db = db
        self._clock = clock
        self._clients = clients
        self._logins = logins
        self._grants = grants
        self._events = events
        self._issuer = issuer
        self._ttl = interaction_ttl
        self._session_ttl = session_ttl
        self._mfa_policies = mfa_policies

    async def start(
        self,
        request: AuthorizationRequest,
        client: Client,
        browser: str,
        session: SessionRecord | None,
    ) -> Step:
        """Begin an interaction; with a live session for this app, skip the password."""
        now = self._clock.now()
        interaction_id = secrets.token_urlsafe(_ID_BYTES)
        async with self._db.write() as conn:
            await repo.insert_interaction(
                conn,
                {
                    "id": interaction_id,
                    "app_id": client.app_id,
                    "client_id": client.id,
                    "request": json.dumps(request.as_dict()),
                    "browser_hash": digest(browser),
                    "csrf": secrets.token_urlsafe(_ID_BYTES),
                    "stage": LOGIN,
                    "user_id": None,
                    "amr": "",
                    "auth_time": None,
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=self._ttl),
                },
            )
        reuse = session is not None and session.app_id == client.app_id
        if reuse and request.prompt != "login" and session is not None:
            pending = await self.load(interaction_id, browser)
            return await self._after_login(
                pending, session.user_id, session.amr.split(), session.auth_time
            )
        if request.prompt == "none":
            await self._drop(client.app_id, interaction_id)
            return Step(None, redirect=self._error(request, "login_required"))
        return Step(LOGIN, interaction_id)

    async def load(self, interaction_id: str, browser: str | None) -> Pending:
        """The interaction, if it exists, is fresh and belongs to this browser."""
        async with self._db.read() as conn:
            record = await repo.get_interaction(conn, interaction_id[:100])
        if (
            record is None
            or browser is None
            or not hmac.compare_digest(record.browser_hash, digest(browser))
            or record.expires_at <= self._clock.now()
        ):
            raise PageError("This login page has expired. Go back to the application and retry.")
        client = await self._clients.get(record.client_id)
        if client is None or not client.record.usable or client.app_id != record.app_id:
            raise PageError("The application that sent you here is not known.")
        request = AuthorizationRequest.from_dict(json.loads(record.request))
        return Pending(record, request, client)

    @staticmethod
    def check_csrf(pending: Pending, token: str | None, stage: str) -> None:
        """The form must carry this interaction's CSRF token and be for its current stage."""
        if token is None or not hmac.compare_digest(pending.record.csrf, token):
            raise PageError("This form is no longer valid. Go back to the application and retry.")
        if pending.record.stage != stage:
            raise PageError("This step is already done. Go back to the application and retry.")

    async def password(
        self, pending: Pending, username: str, password: str, origin: Origin
    ) -> Step | None:
        """Check the password; None means "show the login page again, with an error"."""
        user_id = await self._logins.check_password(
            pending.client.app_id, username, password, origin
        )
        if user_id is None:
            return None
        return await self._after_login(pending, user_id, ["pwd"], self._clock.now())

    async def _after_login(
        self, pending: Pending, user_id: str, amr: list[str], auth_time: datetime
    ) -> Step:
        app_id = pending.client.app_id
        cred = await self._logins.credentials(app_id, user_id)
        enrolled = cred is not None and cred.totp_enabled
        if "otp" not in amr and (enrolled or await self._needs_mfa(pending, user_id, cred)):
            stage = MFA if enrolled else ENROL
            await self._advance(pending, stage, user_id, amr, auth_time)
            return Step(stage, pending.record.id)
        return await self._after_mfa(pending, user_id, amr, auth_time)

    async def _needs_mfa(
        self, pending: Pending, user_id: str, cred: CredentialRecord | None
    ) -> bool:
        """The client, the user's own flag, or the app's policy (over the server's floor)
        asks for a second factor."""
        if pending.client.profile.require_mfa or (cred is not None and cred.mfa_required):
            return True
        app_id = pending.client.app_id
        rule = await self._mfa_policies.effective(app_id)
        if rule.everyone or not rule.roles:
            return rule.everyone
        return rule.applies_to(await self._logins.roles(app_id, user_id))

    async def second_factor(self, pending: Pending, code: str, origin: Origin) -> Step | None:
        """Check a TOTP or recovery code; None means "ask again"."""
        user_id = pending.record.user_id
        if user_id is None:
            raise PageError("Log in first.")
        if not await self._logins.check_second_factor(pending.client.app_id, user_id, code, origin):
            return None
        amr = [*pending.record.amr.split(), "otp", "mfa"]
        return await self._after_mfa(pending, user_id, amr, self._auth_time(pending))

    async def enrolment_secret(self, pending: Pending) -> str:
        """The TOTP secret being enrolled (created on first view)."""
        user_id = pending.record.user_id
        if user_id is None:
            raise PageError("Log in first.")
        app_id = pending.client.app_id
        pending_secret = await self._logins.pending_secret(app_id, user_id)
        return pending_secret or await self._logins.begin_enrolment(app_id, user_id)

    async def enrol(self, pending: Pending, code: str, origin: Origin) -> list[str] | None:
        """Confirm the enrolment with a first code; return the recovery codes (once)."""
        user_id = pending.record.user_id
        if user_id is None:
            raise PageError("Log in first.")
        codes = await self._logins.confirm_enrolment(pending.client.app_id, user_id, code, origin)
        if codes is not None:
            amr = [*pending.record.amr.split(), "otp", "mfa"]
            await self._advance(pending, "enrolled", user_id, amr, self._auth_time(pending))
        return codes

    async def after_enrolment(self, pending: Pending) -> Step:
        """Continue once the recovery codes were shown."""
        user_id = pending.record.user_id
        if user_id is None or pending.record.stage != "enrolled":
            raise PageError("Log in first.")
        amr = pending.record.amr.split()
        return await self._after_mfa(pending, user_id, amr, self._auth_time(pending))

    async def _after_mfa(
        self, pending: Pending, user_id: str, amr: list[str], auth_time: datetime
    ) -> Step:
        if not pending.client.profile.first_party:
            async with self._db.read() as conn:
                consented = await repo.get_consent(
                    conn, pending.client.app_id, user_id, pending.client.id
                )
            have = scope_names.parse(consented)
            if (
                consented is None
                or not pending.request.scope <= have
                or (pending.request.prompt == "consent")
            ):
                await self._advance(pending, CONSENT, user_id, amr, auth_time)
                return Step(CONSENT, pending.record.id)
        return await self._finish(pending, user_id, amr, auth_time)

    async def consent(self, pending: Pending, approved: bool, origin: Origin) -> Step:
        """Record the user's decision on the consent page and finish either way."""
        user_id = pending.record.user_id
        if user_id is None:
            raise PageError("Log in first.")
        actor = Actor(app_id=pending.client.app_id, subject=user_id, client_id=pending.client.id)
        await self._events.emit(
            "auth.consent", "success" if approved else "denied", actor=actor, origin=origin
        )
        if not approved:
            await self._drop(pending.record.app_id, pending.record.id)
            return Step(None, redirect=self._error(pending.request, "access_denied"))
        async with self._db.write() as conn:
            await repo.save_consent(
                conn,
                {
                    "user_id": user_id,
                    "client_id": pending.client.id,
                    "app_id": pending.client.app_id,
                    "scope": scope_names.render(pending.request.scope),
                    "created_at": self._clock.now(),
                },
            )
        amr = pending.record.amr.split()
        return await self._finish(pending, user_id, amr, self._auth_time(pending))

    async def _finish(
        self, pending: Pending, user_id: str, amr: list[str], auth_time: datetime
    ) -> Step:
        async with self._db.write() as conn:
            if not await repo.delete_interaction(conn, pending.record.app_id, pending.record.id):
                raise PageError("This login was already completed.")
        request = pending.request
        code = await self._grants.issue_code(
            Authorization(
                client=pending.client,
                user_id=user_id,
                redirect_uri=request.redirect_uri,
                scope=request.scope,
                code_challenge=request.code_challenge,
                nonce=request.nonce,
                auth_time=auth_time,
                amr=tuple(dict.fromkeys(amr)),
            )
        )
        redirect = redirect_to(
            request.redirect_uri, {"code": code, "state": request.state, "iss": self._issuer}
        )
        return Step(
            None,
            redirect=redirect,
            app_id=pending.client.app_id,
            user_id=user_id,
            amr=tuple(dict.fromkeys(amr)),
        )

    async def _advance(
        self, pending: Pending, stage: str, user_id: str, amr: list[str], auth_time: datetime
    ) -> None:
        async with self._db.write() as conn:
            await repo.update_interaction(
                conn,
                pending.record.app_id,
                pending.record.id,
                stage=stage,
                user_id=user_id,
                amr=" ".join(dict.fromkeys(amr)),
                auth_time=auth_time,
            )

    def _auth_time(self, pending: Pending) -> datetime:
        return pending.record.auth_time or self._clock.now()

    async def _drop(self, app_id: str, interaction_id: str) -> None:
        async with self._db.write() as conn:
            await repo.delete_interaction(conn, app_id, interaction_id)

    def _error(self, request: AuthorizationRequest, error: str) -> str:
        return redirect_to(
            request.redirect_uri, {"error": error, "state": request.state, "iss": self._issuer}
        )

    # Browser sessions.

    async def open_session(self, app_id: str, user_id: str, amr: list[str]) -> str:
        """Start a browser session; returns the cookie value (stored only as a hash)."""
        value = secrets.token_urlsafe(_ID_BYTES)
        now = self._clock.now()
        async with self._db.write() as conn:
            await repo.insert_session(
                conn,
                {
                    "id_hash": digest(value),
                    "app_id": app_id,
                    "user_id": user_id,
                    "amr": " ".join(amr),
                    "auth_time": now,
                    "expires_at": now + timedelta(seconds=self._session_ttl),
                },
            )
        return value

    async def session(self, value: str | None) -> SessionRecord | None:
        """The live session a cookie names, or None."""
        if not value or len(value) > 100:
            return None
        async with self._db.read() as conn:
            found = await repo.get_session(conn, digest(value))
        if found is None or found.expires_at <= self._clock.now():
            return None
        return found

    async def end_session(self, value: str | None, origin: Origin) -> None:
        """Log out: forget the session."""
        found = await self.session(value)
        if value and found is not None:
            async with self._db.write() as conn:
                await repo.delete_session(conn, found.app_id, digest(value))
            await self._events.emit(
                "auth.logout",
                "success",
                actor=Actor(app_id=found.app_id, subject=found.user_id),
                origin=origin,
            )
