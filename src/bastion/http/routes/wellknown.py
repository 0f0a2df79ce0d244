"""Discovery documents and the public signing keys (public)."""

from __future__ import annotations

from fastapi import APIRouter

from bastion.http.deps import Services, ServicesDep
from bastion.http.responses import JSONResponse
from bastion.security.oauth import rfc8414

router = APIRouter(tags=["discovery"])
# Short enough that a published next key reaches every cache before it signs.
_CACHE = {"Cache-Control": "public, max-age=300"}


def _facts(svc: Services) -> tuple[str, str, tuple[str, ...]]:
    """The issuer, the token signing algorithm and the DPoP proof algorithms in force."""
    return svc.settings.issuer, svc.keys.alg, svc.dpop.supported


def _mtls(svc: Services) -> bool:
    """Whether clients may authenticate with a certificate (RFC 8705)."""
    return svc.settings.transport.mtls != "off"


@router.get(
    "/.well-known/jwks.json",
    summary="The keys access tokens are signed with",
    responses={
        200: {
            "description": "An RFC 7517 JWK Set.",
            "content": {"application/jwk-set+json": {"schema": {"type": "object"}}},
        }
    },
)
async def jwks(svc: ServicesDep) -> JSONResponse:
    """RFC 7517 JWK Set: the active key, the next key and keys still verifying old tokens."""
    return JSONResponse(svc.keys.jwks(), headers=_CACHE, media_type="application/jwk-set+json")


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="OAuth 2.0 Authorization Server Metadata (RFC 8414)",
)
async def oauth_metadata(svc: ServicesDep) -> JSONResponse:
    """What this server implements: endpoints, grants, client authentication, keys."""
    document = rfc8414.metadata(*_facts(svc), docs=svc.settings.debug, mtls=_mtls(svc))
    return JSONResponse(document, headers=_CACHE)


@router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Provider Metadata (OpenID Connect Discovery 1.0)",
)
async def openid_configuration(svc: ServicesDep) -> JSONResponse:
    """The same facts as the RFC 8414 document, plus ID token details."""
    document = rfc8414.openid_configuration(*_facts(svc), docs=svc.settings.debug, mtls=_mtls(svc))
    return JSONResponse(document, headers=_CACHE)
