"""The OAuth 2.0 token, revocation and introspection endpoints.

They are public routes: the client authenticates itself on each request (HTTP Basic,
``private_key_jwt``, its TLS certificate for ``tls_client_auth`` clients, or
``client_id`` alone for public clients).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request

from bastion.core.errors import OAuthError
from bastion.http.deps import Services, ServicesDep, origin_of
from bastion.http.responses import JSONResponse
from bastion.http.schemas.common import Problem
from bastion.security.oauth import rfc6749, rfc7009, rfc7523, rfc7662, rfc8693, rfc8705, rfc9449
from bastion.security.oauth.clients import Client
from bastion.security.oauth.server import GRANT_TYPES, single_valued

router = APIRouter(tags=["oauth"])

_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    # RFC 6749 §5.2 errors are plain JSON, also for a refused method, media type or size;
    # a rate-limited request (429) is a problem document with Retry-After.
    "4XX": {
        "description": "An RFC 6749 §5.2 error, or a problem document when rate limited.",
        "content": {
            "application/json": {},
            "application/problem+json": {"schema": Problem.model_json_schema()},
        },
    },
}

_TOKEN_FORM = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {
                        "type": "string",
                        "enum": list(GRANT_TYPES),
                    },
                    "code": {"type": "string", "maxLength": 4096},
                    "redirect_uri": {"type": "string", "maxLength": 4096},
                    "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
                    "refresh_token": {"type": "string", "maxLength": 4096},
                    "client_id": {"type": "string", "description": "Public clients only."},
                    "client_assertion_type": {"type": "string", "enum": [rfc7523.ASSERTION_TYPE]},
                    "client_assertion": {"type": "string", "maxLength": 8192},
                    "scope": {"type": "string", "maxLength": 4096},
                    "subject_token": {"type": "string", "maxLength": 4096},
                    "subject_token_type": {
                        "type": "string",
                        "enum": list(rfc8693.SUBJECT_TOKEN_TYPES),
                    },
                    "actor_token": {"type": "string", "maxLength": 4096},
                    "actor_token_type": {"type": "string", "enum": [rfc8693.ACCESS_TOKEN_TYPE]},
                    "requested_token_type": {"type": "string"},
                    "audience": {"type": "string", "maxLength": 4096},
                },
            }
        }
    },
    "required": True,
}


@router.post(
    "/oauth/token",
    summary="Issue tokens (authorization_code, refresh_token, client_credentials, exchange)",
    openapi_extra={"requestBody": _TOKEN_FORM},
    responses=_OAUTH_ERRORS,
)
async def token(request: Request, svc: ServicesDep) -> JSONResponse:
    """RFC 6749 §3.2 token endpoint; answers RFC 6749 §5.1 / §5.2 bodies, never cached."""
    authorization = _authorization(request)
    form = await _form(request)
    body = await svc.token_endpoint.handle(
        form,
        authorization,
        origin_of(request),
        dpop_jkt=await _dpop_key(request, svc),
        certificate=rfc8705.certificate_of(request.scope),
    )
    return JSONResponse(body, headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _authorization(request: Request) -> str | None:
    return rfc6749.authorization_header(request.headers.getlist("authorization"))


async def _form(request: Request) -> list[tuple[str, str]]:
    raw = await request.body()
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "The request body is not a valid form.") from exc


def _token_form(extra: dict[str, object]) -> dict[str, object]:
    schema = {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "maxLength": 4096},
            "token_type_hint": {"type": "string", "enum": list(rfc7009.HINTS)},
            **extra,
        },
    }
    return {
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        "required": True,
    }


async def _client_request(request: Request, svc: Services) -> tuple[dict[str, str], Client]:
    """The form's single-valued parameters and the client it authenticates (RFC 6749
    §2.3: secret, signed assertion or, with mutual TLS, the presented certificate)."""
    authorization = _authorization(request)
    params = single_valued(await _form(request))
    certificate = rfc8705.certificate_of(request.scope)
    return params, await svc.authserver.clients.authenticate(params, authorization, certificate)


@router.post(
    "/oauth/revoke",
    summary="Revoke a token (RFC 7009)",
    openapi_extra={"requestBody": _token_form({"client_id": {"type": "string"}})},
    responses={
        200: {"description": "Revoked, or was not a live token of this client"},
        **_OAUTH_ERRORS,
    },
)
async def revoke(request: Request, svc: ServicesDep) -> JSONResponse:
    """RFC 7009 §2: 200 for every well-formed request by an authenticated client."""
    params, client = await _client_request(request, svc)
    await rfc7009.revoke(
        params,
        client,
        grants=svc.authserver.grants,
        tokens=svc.tokens,
        events=svc.events,
        origin=origin_of(request),
    )
    return JSONResponse({}, headers=_NO_STORE)


@router.post(
    "/oauth/introspect",
    summary="Introspect a token (RFC 7662)",
    openapi_extra={"requestBody": _token_form({})},
    responses=_OAUTH_ERRORS,
)
async def introspect(request: Request, svc: ServicesDep) -> JSONResponse:
    """RFC 7662 §2: confidential clients only; dead tokens are ``{"active": false}``."""
    params, client = await _client_request(request, svc)
    body = await rfc7662.introspect(
        params,
        client,
        grants=svc.authserver.grants,
        tokens=svc.tokens,
        issuer=svc.settings.issuer,
        audience=svc.settings.audience,
    )
    return JSONResponse(body, headers=_NO_STORE)


async def _dpop_key(request: Request, svc: ServicesDep) -> str | None:
    """RFC 9449 §5: the thumbprint of the request's DPoP proof, if it sent one."""
    proofs = request.headers.getlist("dpop")
    if not proofs:
        return None
    url = svc.settings.public_url + "/oauth/token"
    try:
        return (await svc.dpop.validate(proofs, method="POST", url=url)).jkt
    except rfc9449.UseDPoPNonce as exc:
        raise OAuthError("use_dpop_nonce", str(exc), headers={"DPoP-Nonce": exc.nonce}) from exc
    except rfc9449.InvalidDPoPProof as exc:
        raise OAuthError("invalid_dpop_proof", str(exc)) from exc
