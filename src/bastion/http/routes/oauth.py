"""The OAuth 2.0 token endpoint (public: the client authenticates with HTTP Basic)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Request

from bastion.core.errors import OAuthError
from bastion.http.deps import ServicesDep
from bastion.http.responses import JSONResponse
from bastion.security.oauth import rfc6749, rfc8693, rfc9449

router = APIRouter(tags=["oauth"])

_TOKEN_FORM = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {
                        "type": "string",
                        "enum": [rfc6749.CLIENT_CREDENTIALS, rfc8693.GRANT_TYPE],
                    },
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
    summary="Issue an access token (client_credentials, token exchange)",
    openapi_extra={"requestBody": _TOKEN_FORM},
    responses={400: {"description": "RFC 6749 §5.2 error"}, 401: {"description": "invalid_client"}},
)
async def token(
    request: Request,
    svc: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """RFC 6749 §3.2 token endpoint; answers RFC 6749 §5.1 / §5.2 bodies, never cached."""
    raw = await request.body()
    try:
        form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "The request body is not a valid form.") from exc
    body = await svc.token_endpoint.handle(form, authorization, dpop_jkt=_dpop_key(request, svc))
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _dpop_key(request: Request, svc: ServicesDep) -> str | None:
    """RFC 9449 §5: the thumbprint of the request's DPoP proof, if it sent one."""
    proofs = request.headers.getlist("dpop")
    if not proofs:
        return None
    url = svc.settings.server.public_url.rstrip("/") + "/oauth/token"
    try:
        return svc.dpop.validate(proofs, method="POST", url=url).jkt
    except rfc9449.UseDPoPNonce as exc:
        raise OAuthError("use_dpop_nonce", str(exc), headers={"DPoP-Nonce": exc.nonce}) from exc
    except rfc9449.InvalidDPoPProof as exc:
        raise OAuthError("invalid_dpop_proof", str(exc)) from exc
