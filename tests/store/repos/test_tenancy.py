"""Every repository function takes the app (tenant) id, unless it is listed here and why.

The rule (docs/architecture.md, "Tenancy"): no query can return or change another
app's rows, because the app id is in every repository function's signature and WHERE
clause. The exceptions are few and named: queries that span every app on purpose live
in ``store.repos.cross_tenant``; the others are listed below with their reason.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

import bastion.store.repos
from bastion.core.ids import Kind, new_id
from bastion.store import migrate
from bastion.store.db import Database, create_engine
from bastion.store.repos import apps, logins, oauth
from bastion.store.tables import auth_interactions, login_credentials, login_sessions
from tests.conftest import Databases
from tests.support.logins import legacy_login

CROSS_TENANT_MODULE = "cross_tenant"
"""Its functions span every app by design; its docstring says why, one by one."""

WITHOUT_APP_ID: dict[tuple[str, str], str] = {
    # Found by what a caller presents, before any app is known. The value names one row,
    # so one app; the caller checks that app against the authenticated client's.
    ("apps", "get_client"): "client authentication at the token endpoint: ids are unique",
    ("oauth", "identify_client"): "client authentication and login pages: ids are unique",
    ("oauth", "get_interaction"): "a login page presents the interaction's random id",
    ("oauth", "get_session"): "a browser presents its session cookie",
    ("oauth", "claim_code"): "a client presents an authorization code",
    ("oauth", "get_refresh"): "a client presents a refresh token",
    ("oauth", "use_assertion"): "insert only, keyed by a client id unique across apps",
    # The operator's view of the server's tenants (`bastion apps list`).
    ("apps", "list_apps"): "lists the apps themselves, for the operator's command line",
    # Inserts and upserts: the new row's app id is in the record or values given.
    ("logins", "save_failures"): "the FailureRecord carries the app id",
    ("oauth", "save_profile"): "the ClientProfile carries the app id",
    ("oauth", "insert_interaction"): "the values carry the app id",
    ("oauth", "insert_session"): "the values carry the app id",
    ("oauth", "insert_grant"): "the values carry the app id",
    ("oauth", "insert_code"): "the values carry the app id",
    ("oauth", "insert_refresh"): "the values carry the app id",
    ("oauth", "save_consent"): "the values carry the app id",
    ("data_keys", "insert_key"): "the DataKeyRecord carries the app id",
    # Key rotation and re-encryption walk every app's keys and sealed values.
    ("data_keys", "keys_to_rewrap"): "KEK rotation rewraps every app's data keys",
    ("data_keys", "count_below_version"): "KEK rotation reports progress over all apps",
    ("data_keys", "set_wrapped"): "KEK rotation: rows chosen by keys_to_rewrap",
    ("data_keys", "retire_keys"): "re-encryption retires keys it chose across all apps",
    ("data_keys", "owners_with_keys_before"): "data key rotation finds owners in all apps",
    ("data_keys", "live_data_keys"): "re-encryption's final sweep over all apps",
    ("data_keys", "get_job"): "a key job is the server's, not an app's",
    ("data_keys", "save_job"): "a key job is the server's, not an app's",
    ("sealed_rows", "scan"): "re-encryption scans every app's sealed values",
    ("sealed_rows", "rewrite"): "re-encryption: rows chosen by scan",
    ("sealed_rows", "count"): "re-encryption reports progress over all apps",
    # The audit log is one hash chain over every app's events, read by operators.
    ("audit", "lock_head"): "the chain has one head for the whole server",
    ("audit", "extend_chain"): "the chain has one head for the whole server",
    ("audit", "chain_head"): "the chain has one head for the whole server",
    ("audit", "insert_records"): "each record carries its own app id (or none)",
    ("audit", "records_after"): "verification and export walk the whole chain",
    ("audit", "query"): "the AuditFilter carries the app scope (None: the operator's)",
    ("audit", "hashes_between"): "verification walks the whole chain",
    ("audit", "count"): "the whole chain's length",
    ("audit", "last_checkpoint"): "checkpoints sign the whole chain",
    ("audit", "checkpoints"): "checkpoints sign the whole chain",
    ("audit", "insert_checkpoint"): "checkpoints sign the whole chain",
    # The search indexer files every app's pending terms, oldest first.
    ("pending_terms", "holds"): "a predicate over a row the caller already scoped",
    ("pending_terms", "take"): "the indexer's queue spans all apps",
    ("pending_terms", "file"): "each taken row carries its own app id",
    ("pending_terms", "index_batch"): "the indexer's queue spans all apps",
}


def _modules() -> Iterator[ModuleType]:
    for info in pkgutil.iter_modules(bastion.store.repos.__path__):
        if not info.name.startswith("_") and info.name != CROSS_TENANT_MODULE:
            yield importlib.import_module(f"bastion.store.repos.{info.name}")


def _repository_functions() -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(module, name, function) of every public function that is given a connection."""
    for module in _modules():
        short = module.__name__.rsplit(".", 1)[1]
        for name, function in inspect.getmembers(module, inspect.isfunction):
            own = function.__module__ == module.__name__ and not name.startswith("_")
            if own and "conn" in inspect.signature(function).parameters:
                yield short, name, function


def _uses_app_id(function: Callable[..., Any]) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    body = tree.body[0]
    assert isinstance(body, ast.FunctionDef | ast.AsyncFunctionDef)
    return any(
        isinstance(node, ast.Name) and node.id == "app_id" and isinstance(node.ctx, ast.Load)
        for statement in body.body
        for node in ast.walk(statement)
    )


def test_every_repository_function_takes_the_app_id() -> None:
    """A function without an ``app_id`` parameter must be on the list, with its reason."""
    missing = [
        f"{module}.{name}"
        for module, name, function in _repository_functions()
        if "app_id" not in inspect.signature(function).parameters
        and (module, name) not in WITHOUT_APP_ID
    ]
    assert missing == []


def test_a_function_given_the_app_id_uses_it() -> None:
    """An ``app_id`` parameter that the query ignores would satisfy the rule in name only."""
    unused = [
        f"{module}.{name}"
        for module, name, function in _repository_functions()
        if "app_id" in inspect.signature(function).parameters and not _uses_app_id(function)
    ]
    assert unused == []


def test_the_list_names_only_functions_without_an_app_id() -> None:
    """No stale entries: each listed function exists and still lacks ``app_id``."""
    found = {(module, name): f for module, name, f in _repository_functions()}
    stale = [
        key
        for key in WITHOUT_APP_ID
        if key not in found or "app_id" in inspect.signature(found[key]).parameters
    ]
    assert stale == []


NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    """A fresh, migrated database (no column cipher: nothing here is sealed)."""
    engine = create_engine(databases.new())
    await migrate.upgrade(engine)
    database = Database(engine)
    yield database
    await database.close()


async def test_logins_ignore_another_apps_id(db: Database) -> None:
    """Credentials, TOTP steps and recovery codes change only for the user's own app."""
    app_id, other, user_id = new_id(Kind.APP), new_id(Kind.APP), new_id(Kind.USER)
    await legacy_login(db, app_id, user_id)
    async with db.write() as conn:
        await logins.replace_recovery_codes(conn, app_id, user_id, ["a" * 64, "b" * 64])
        await logins.update_credentials(conn, other, user_id, mfa_required=True)
        assert not await logins.use_totp_step(conn, other, user_id, 5)
        await logins.replace_recovery_codes(conn, other, user_id, [])
        assert not await logins.use_recovery_code(conn, other, user_id, "a" * 64, NOW)
    async with db.read() as conn:
        row = (await conn.execute(select(login_credentials))).mappings().one()
    assert (row["mfa_required"], row["totp_last_step"]) == (False, 0)
    async with db.write() as conn:
        assert await logins.use_recovery_code(conn, app_id, user_id, "b" * 64, NOW)
        assert await logins.use_totp_step(conn, app_id, user_id, 5)


async def _authorization_state(db: Database, app_id: str, user_id: str, client_id: str) -> None:
    """A client, a grant with a refresh token, a consent, an interaction and a session."""
    async with db.write() as conn:
        await apps.insert_client(
            conn,
            app_id=app_id,
            client_id=client_id,
            name="web",
            secret_hash="",
            scopes=frozenset(),
            now=NOW,
        )
        common = {"app_id": app_id, "user_id": user_id, "amr": "pwd", "auth_time": NOW}
        await oauth.insert_grant(
            conn,
            {
                **common,
                "id": "grant1",
                "client_id": client_id,
                "scope": "openid",
                "created_at": NOW,
                "expires_at": LATER,
                "revoked_at": None,
            },
        )
        await oauth.insert_refresh(
            conn,
            {
                "token_hash": "r" * 64,
                "grant_id": "grant1",
                "app_id": app_id,
                "created_at": NOW,
                "expires_at": LATER,
                "rotated_at": None,
                "access_jti": "jti1",
                "access_expires_at": LATER,
            },
        )
        await oauth.save_consent(
            conn,
            {
                "user_id": user_id,
                "client_id": client_id,
                "app_id": app_id,
                "scope": "openid",
                "created_at": NOW,
            },
        )
        await oauth.insert_interaction(
            conn,
            {
                **common,
                "id": "interaction1",
                "client_id": client_id,
                "request": "{}",
                "browser_hash": "b" * 64,
                "csrf": "c",
                "stage": "login",
                "created_at": NOW,
                "expires_at": LATER,
            },
        )
        await oauth.insert_session(conn, {**common, "id_hash": "s" * 64, "expires_at": LATER})


async def test_authorization_state_ignores_another_apps_id(db: Database) -> None:
    """Clients, grants, refresh tokens, consents, interactions and sessions are read and
    changed only with their own app's id."""
    app_id, other = new_id(Kind.APP), new_id(Kind.APP)
    user_id, client_id = new_id(Kind.USER), new_id(Kind.CLIENT)
    await legacy_login(db, app_id, user_id)
    await _authorization_state(db, app_id, user_id, client_id)
    async with db.write() as conn:
        assert await oauth.get_client_with_profile(conn, other, client_id) is None
        await oauth.update_client(conn, other, client_id, disabled=True)
        assert await oauth.get_grant(conn, other, "grant1") is None
        assert not await oauth.revoke_grant(conn, other, "grant1", NOW)
        assert await oauth.grant_access_tokens(conn, other, "grant1", NOW) == []
        assert not await oauth.rotate_refresh(conn, other, "r" * 64, NOW)
        assert await oauth.get_consent(conn, other, user_id, client_id) is None
        await oauth.update_interaction(conn, other, "interaction1", stage="consent")
        assert not await oauth.delete_interaction(conn, other, "interaction1")
        await oauth.delete_session(conn, other, "s" * 64)
    async with db.read() as conn:
        found = await oauth.get_client_with_profile(conn, app_id, client_id)
        grant = await oauth.get_grant(conn, app_id, "grant1")
        refresh = await oauth.get_refresh(conn, "r" * 64)
        consent = await oauth.get_consent(conn, app_id, user_id, client_id)
        stage = (await conn.execute(select(auth_interactions.c.stage))).scalar_one()
        sessions = (await conn.execute(select(login_sessions.c.id_hash))).scalars().all()
    assert found is not None
    assert grant is not None
    assert refresh is not None
    assert (found[0].disabled, grant.revoked_at, refresh.rotated_at) == (False, None, None)
    assert (consent, stage, sessions) == ("openid", "login", ["s" * 64])
