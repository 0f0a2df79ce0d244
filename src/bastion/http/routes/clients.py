"""OAuth clients of the app: registration, changes and secret rotation (``clients:*``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bastion.core.clock import rfc3339
from bastion.core.ids import Kind
from bastion.http.deps import ServicesDep, origin_of, path_id, requires
from bastion.http.idempotency import IdempotencyKey
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.clients import (
    ClientCreate,
    ClientOut,
    ClientPage,
    ClientUpdate,
    SecretOut,
    SecretRotation,
)
from bastion.observe.events import Actor
from bastion.security import scopes
from bastion.security.oauth import clients as kinds
from bastion.security.oauth import rfc8705
from bastion.security.oauth.clients import Client, Registration
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/clients", tags=["clients"])

ReadClients = Annotated[Principal, requires("client:read")]
WriteClients = Annotated[Principal, requires("client:write")]


def client_view(client: Client, secret: str | None = None) -> dict[str, Any]:
    """The public form of a client."""
    profile, record = client.profile, client.record
    view: dict[str, Any] = {
        "id": record.id,
        "app_id": record.app_id,
        "name": record.name,
        "client_type": profile.client_type,
        "auth_method": profile.auth_method,
        "redirect_uris": list(profile.redirect_uris),
        "grant_types": sorted(profile.grant_types),
        "scopes": sorted(record.scopes),
        "first_party": profile.first_party,
        "require_mfa": profile.require_mfa,
        "disabled": record.disabled,
        "created_at": rfc3339(record.created_at),
    }
    if profile.jwks:
        view["jwks"] = json.loads(profile.jwks)
    if profile.tls_client_auth:
        name, value = profile.tls_client_auth
        view[name] = value
    if secret is not None:
        view["client_secret"] = secret
    return view


async def _audit(
    svc: Any, request: Request, caller: Principal, client_id: str, change: str
) -> None:
    await svc.events.emit(
        "admin.change",
        "success",
        actor=Actor(app_id=caller.app_id, subject=caller.subject, client_id=caller.client_id),
        origin=origin_of(request),
        resource=f"client:{client_id}",
        details={"change": change},
    )


@router.post("", status_code=201, response_model=ClientOut, summary="Register a client")
async def create_client(
    body: ClientCreate,
    caller: WriteClients,
    svc: ServicesDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """Register a client; a generated secret is in this answer only (stored hashed)."""
    certificate_name = kinds.certificate_name_field(
        body.model_dump(include=set(rfc8705.NAME_FIELDS))
    )
    default_method = kinds.SECRET_BASIC if certificate_name is None else kinds.TLS_CLIENT_AUTH
    if body.client_type == kinds.PUBLIC:
        default_method = kinds.NONE
    registration = Registration(
        name=body.name,
        client_type=body.client_type,
        auth_method=body.auth_method or default_method,
        redirect_uris=tuple(body.redirect_uris),
        grant_types=frozenset(body.grant_types),
        scopes=frozenset(body.scopes) if body.scopes is not None else scopes.DEFAULT_USER_SCOPES,
        jwks=json.dumps(body.jwks) if body.jwks is not None else None,
        first_party=body.first_party,
        require_mfa=body.require_mfa,
        tls_client_auth=certificate_name,
    )

    async def create() -> Response:
        kinds.validate(registration, caller.scopes | scopes.USER_SCOPES | {"openid"})
        client, secret = await svc.authserver.clients.register(caller.app_id, registration)
        await _audit(svc, request, caller, client.id, "client_registered")
        return json_response(
            client_view(client, secret), status=201, location=f"/v1/clients/{client.id}"
        )

    return await svc.idempotency.once(request, caller, key, create)


@router.get("", response_model=ClientPage, summary="List clients")
async def list_clients(caller: ReadClients, svc: ServicesDep) -> JSONResponse:
    """Every client of the app (secrets are never shown again)."""
    found = await svc.authserver.clients.list(caller.app_id)
    return json_response({"data": [client_view(c) for c in found], "next_cursor": None})


@router.get("/{client_id}", response_model=ClientOut, summary="Get a client")
async def get_client(client_id: str, caller: ReadClients, svc: ServicesDep) -> JSONResponse:
    """One client of the app."""
    client = await svc.authserver.clients.get_owned(
        caller.app_id, path_id(Kind.CLIENT, client_id, "client")
    )
    return json_response(client_view(client))


@router.patch("/{client_id}", response_model=ClientOut, summary="Update a client")
async def update_client(
    client_id: str, body: ClientUpdate, caller: WriteClients, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Apply a JSON Merge Patch (name, redirect URIs, keys, consent, MFA, disabled)."""
    client = await svc.authserver.clients.get_owned(
        caller.app_id, path_id(Kind.CLIENT, client_id, "client")
    )
    changes: dict[str, object] = body.model_dump(exclude_unset=True, exclude_none=True)
    if "redirect_uris" in changes:
        changes["redirect_uris"] = tuple(body.redirect_uris or ())
    if "jwks" in changes:
        changes["jwks"] = json.dumps(body.jwks)
    updated = await svc.authserver.clients.update(client, changes)
    await _audit(svc, request, caller, client.id, "client_updated")
    return json_response(client_view(updated))


@router.post("/{client_id}/secret", response_model=SecretOut, summary="Rotate a client secret")
async def rotate_secret(
    client_id: str,
    body: SecretRotation,
    caller: WriteClients,
    svc: ServicesDep,
    request: Request,
) -> JSONResponse:
    """A new secret, shown once; the old one works for ``overlap_seconds`` more."""
    client = await svc.authserver.clients.get_owned(
        caller.app_id, path_id(Kind.CLIENT, client_id, "client")
    )
    secret = await svc.authserver.clients.rotate_secret(client, body.overlap_seconds)
    rotated = await svc.authserver.clients.get_owned(caller.app_id, client.id)
    await _audit(svc, request, caller, client.id, "client_secret_rotated")
    expires = rotated.profile.previous_secret_expires_at
    return json_response(
        {
            "client_id": client.id,
            "client_secret": secret,
            "previous_secret_expires_at": rfc3339(expires) if expires else None,
        }
    )
