"""``bastion keys signing|rotate-signing`` and ``bastion clients ...``: token signing keys
and OAuth clients. The signing-key commands join the ``keys`` group of the encryption keys."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from bastion.app import database, key_store, rotation_policy, secret_hasher, signing_keys
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.errors import BastionError, ValidationFailed
from bastion.core.settings import Settings
from bastion.security import scopes
from bastion.security.keys import KeyRotationError
from bastion.security.oauth import clients as kinds
from bastion.security.oauth import rfc8705
from bastion.security.oauth.clients import Client, ClientRegistry, Registration

clients_cli = typer.Typer(
    help="OAuth clients: register, list, rotate secrets.", no_args_is_help=True
)
console = Console(stderr=True)


def signing_keys_list(data_dir: DataDir = None) -> None:
    """Print the signing keys and their states (no key material) as JSON."""
    settings = load_settings_or_exit(data_dir)
    signing_keys(settings)
    typer.echo(json.dumps(key_store(settings).describe(), indent=2))


def rotate_signing(
    data_dir: DataDir = None,
    force: Annotated[
        bool, typer.Option(help="Rotate even if the next key was published only just now.")
    ] = False,
) -> None:
    """Start signing with the published next key; keep the old one until its tokens expire.

    Running servers pick the change up within ``oauth.key_check_seconds``.
    """
    settings = load_settings_or_exit(data_dir)
    signing_keys(settings)
    policy = rotation_policy(settings)
    try:
        done = key_store(settings).rotate(
            datetime.now(UTC),
            keep_seconds=policy.keep_seconds,
            publish_seconds=policy.publish_seconds,
            force=force,
        )
    except KeyRotationError as exc:
        console.print(f"[red]Not rotated:[/red] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(
        json.dumps({"active": done.activated, "next": done.published, "retired": done.retired})
    )


def register_key_commands(keys: typer.Typer) -> None:
    """Add ``signing`` and ``rotate-signing`` to the ``bastion keys`` group."""
    keys.command("signing")(signing_keys_list)
    keys.command("rotate-signing")(rotate_signing)


def _registry(settings: Settings) -> tuple[ClientRegistry, Any]:
    db = database(settings)
    registry = ClientRegistry(
        db,
        secret_hasher(settings),
        SystemClock(),
        issuer=settings.issuer,
        assertion_max_lifetime=settings.oauth.assertion_max_lifetime,
        leeway=settings.auth.leeway,
        mtls=settings.transport.mtls != "off",
    )
    return registry, db


def _view(client: Client, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "client_id": client.id,
        "app_id": client.app_id,
        "name": client.record.name,
        "client_type": client.profile.client_type,
        "auth_method": client.profile.auth_method,
        "redirect_uris": list(client.profile.redirect_uris),
        "grant_types": sorted(client.profile.grant_types),
        "scopes": sorted(client.record.scopes),
        "disabled": client.record.disabled,
    }
    if client.profile.tls_client_auth:
        name, value = client.profile.tls_client_auth
        view[name] = value
    if secret is not None:
        view["client_secret"] = secret
    return view


def _run(settings: Settings, action: Any) -> Any:
    async def run() -> Any:
        registry, db = _registry(settings)
        try:
            return await action(registry)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except BastionError as exc:
        _refused(exc)
        raise typer.Exit(1) from exc


def _refused(exc: BastionError) -> None:
    """Say why, naming each invalid field."""
    if not isinstance(exc, ValidationFailed):
        console.print(f"[red]Refused:[/red] {exc}")
        return
    for error in exc.errors:
        console.print(f"[red]Refused:[/red] {error.field.removeprefix('body.')}: {error.message}")


def _certificate_name(subject_dn: str | None, san: str | None) -> tuple[str, str] | None:
    """The tls_client_auth name from --tls-subject-dn / --tls-san (exit 2 if malformed)."""
    kind, _, value = (san or "").partition(":")
    field = f"tls_client_auth_san_{kind.lower()}"
    if san is not None and (field not in rfc8705.NAME_FIELDS or not value):
        console.print("[red]--tls-san takes dns:, uri:, ip: or email: and a value.[/red]")
        raise typer.Exit(2)
    try:
        return kinds.certificate_name_field(
            {rfc8705.SUBJECT_DN: subject_dn, field: value if san is not None else None}
        )
    except BastionError as exc:
        _refused(exc)
        raise typer.Exit(2) from exc


@clients_cli.command("create")
def clients_create(
    app: Annotated[str, typer.Option("--app", help="The app (tenant) id.")],
    name: Annotated[str, typer.Option(help="A name users see on the consent screen.")],
    public: Annotated[bool, typer.Option(help="A public client (SPA, mobile): PKCE only.")] = False,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Exact redirect URI (repeatable).")
    ] = None,
    grant: Annotated[
        list[str] | None, typer.Option("--grant", help="Grant type (repeatable).")
    ] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Scope (repeatable).")] = None,
    first_party: Annotated[bool, typer.Option(help="Skip the consent screen.")] = False,
    require_mfa: Annotated[bool, typer.Option(help="Users must use TOTP.")] = False,
    tls_subject_dn: Annotated[
        str | None,
        typer.Option(help="tls_client_auth (RFC 8705): the certificate's subject DN."),
    ] = None,
    tls_san: Annotated[
        str | None,
        typer.Option(
            help="tls_client_auth: a SAN the certificate must hold, as dns:, uri:, ip: or "
            "email: followed by the value."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a client; prints it as JSON with its secret (shown only this once).

    With --tls-subject-dn or --tls-san the client authenticates with its TLS client
    certificate (tls_client_auth) instead of a secret; transport.mtls must be on.
    """
    settings = load_settings_or_exit(data_dir)
    certificate_name = _certificate_name(tls_subject_dn, tls_san)
    method = kinds.SECRET_BASIC if certificate_name is None else kinds.TLS_CLIENT_AUTH
    registration = Registration(
        name=name,
        client_type=kinds.PUBLIC if public else kinds.CONFIDENTIAL,
        auth_method=kinds.NONE if public else method,
        redirect_uris=tuple(redirect_uri or ()),
        grant_types=frozenset(grant or kinds.USER_GRANTS),
        scopes=frozenset(scope) if scope else scopes.DEFAULT_USER_SCOPES,
        first_party=first_party,
        require_mfa=require_mfa,
        tls_client_auth=certificate_name,
    )
    try:
        kinds.validate(registration, scopes.ALL_SCOPES | {"openid"})
    except ValidationFailed as exc:
        _refused(exc)
        raise typer.Exit(1) from exc

    async def create(registry: ClientRegistry) -> dict[str, Any]:
        client, secret = await registry.register(app, registration)
        return _view(client, secret)

    typer.echo(json.dumps(_run(settings, create)))


@clients_cli.command("list")
def clients_list(
    app: Annotated[str, typer.Option("--app", help="The app (tenant) id.")],
    data_dir: DataDir = None,
) -> None:
    """Print the app's clients as JSON (never their secrets)."""
    settings = load_settings_or_exit(data_dir)

    async def listed(registry: ClientRegistry) -> list[dict[str, Any]]:
        return [_view(c) for c in await registry.list(app)]

    typer.echo(json.dumps(_run(settings, listed), indent=2))


@clients_cli.command("rotate-secret")
def clients_rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The client id.")],
    overlap: Annotated[
        int, typer.Option(help="Seconds the old secret keeps working.", min=0, max=2_592_000)
    ] = 0,
    data_dir: DataDir = None,
) -> None:
    """Issue a new secret (printed once); the old one works for ``--overlap`` seconds."""
    settings = load_settings_or_exit(data_dir)

    async def rotate(registry: ClientRegistry) -> dict[str, Any]:
        client = await registry.get(client_id)
        if client is None:
            raise typer.BadParameter("no such client")
        return {
            "client_id": client.id,
            "client_secret": await registry.rotate_secret(client, overlap),
        }

    typer.echo(json.dumps(_run(settings, rotate)))


@clients_cli.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="The client id.")],
    data_dir: DataDir = None,
) -> None:
    """Disable a client: it can no longer authenticate or start logins."""
    settings = load_settings_or_exit(data_dir)

    async def disable(registry: ClientRegistry) -> dict[str, Any]:
        client = await registry.get(client_id)
        if client is None:
            raise typer.BadParameter("no such client")
        return _view(await registry.update(client, {"disabled": True}))

    typer.echo(json.dumps(_run(settings, disable)))
