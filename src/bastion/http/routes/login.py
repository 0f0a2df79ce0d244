"""The authorization endpoint and the login pages of the code flow (public, HTML).

Pages carry no script and no style; the global CSP (``default-src 'none';
frame-ancestors 'none'``) and ``X-Frame-Options: DENY`` apply to them. Every form is
bound to its interaction by a CSRF token, and every interaction to the browser that
started it by an HttpOnly cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Cookie, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from bastion.core.errors import OAuthError
from bastion.http.deps import Services, ServicesDep, origin_of
from bastion.http.schemas.common import Problem
from bastion.security import mfa
from bastion.security import scopes as scope_names
from bastion.security.oauth import authorize, interaction
from bastion.security.oauth.authorize import PageError, RedirectError
from bastion.security.oauth.interaction import Pending, Step
from bastion.security.oauth.server import single_valued
from bastion.web import render


class PageRoute(APIRoute):
    """A login page route: a ``PageError`` anywhere in its handler (an expired or foreign
    interaction, a stale form, a step already done) becomes the HTML error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, answering ``PageError`` with the error page."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as exc:
                return _error_page(str(exc))

        return answer


router = APIRouter(tags=["login"], route_class=PageRoute)

BROWSER_COOKIE = "bastion_browser"
SESSION_COOKIE = "bastion_session"
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "An HTML page."},
    # The pages answer their own errors as HTML; the guards in front answer problems.
    "4XX": {
        "description": (
            "An HTML error page, an RFC 6749 error, a guard's problem document, or the"
            " HTTP server's plain-text 400 for a request line it cannot parse."
        ),
        "content": {
            "text/html": {},
            "text/plain": {},
            "application/json": {},
            "application/problem+json": {"schema": Problem.model_json_schema()},
        },
    },
}
_SEE_OTHER: dict[int | str, dict[str, Any]] = {303: {"description": "Continue at the Location."}}
_GENERIC_LOGIN_ERROR = "Invalid username or password."
_PRODUCT = "Bastion"


def _secure(svc: Services) -> bool:
    return svc.settings.issuer.startswith("https://")


def _page(
    template: str, *, status: int = 200, form_goes_to: str | None = None, **context: Any
) -> HTMLResponse:
    """An HTML page; a page with a form allows it to post here and, after our redirect,
    to land at ``form_goes_to`` (the client's redirect URI) and nowhere else."""
    html = render(template, product=_PRODUCT, **context)
    headers = {"Cache-Control": "no-store"}
    if "csrf" in context:
        headers["Content-Security-Policy"] = _form_policy(form_goes_to)
    return HTMLResponse(html, status_code=status, headers=headers)


def _form_policy(form_goes_to: str | None) -> str:
    """The closed policy of every response, but with form-action open to us (and the client)."""
    sources = ["'self'"]
    if form_goes_to:
        parts = urlsplit(form_goes_to)
        # A scheme source for private-use schemes (native apps), the origin otherwise.
        sources.append(f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:")
    return (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action {' '.join(sources)}"
    )


def _error_page(message: str, status: int = 400) -> HTMLResponse:
    return _page("error.html", status=status, message=message)


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def _set_cookie(response: Response, svc: Services, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=_secure(svc),
        samesite="lax",
        path="/",
    )


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        return single_valued(pairs)
    except (UnicodeDecodeError, ValueError, OAuthError) as exc:
        raise PageError("The form could not be read.") from exc


_Param = Annotated[str | None, Query(max_length=4096)]


async def _authorization_parameters(
    response_type: _Param = None,
    client_id: _Param = None,
    redirect_uri: _Param = None,
    scope: _Param = None,
    state: _Param = None,
    code_challenge: _Param = None,
    code_challenge_method: _Param = None,
    nonce: _Param = None,
    prompt: _Param = None,
    response_mode: _Param = None,
    request: _Param = None,
    request_uri: _Param = None,
    max_age: _Param = None,
    login_hint: _Param = None,
    ui_locales: _Param = None,
    display: _Param = None,
    acr_values: _Param = None,
    id_token_hint: _Param = None,
    claims: _Param = None,
    resource: _Param = None,
) -> None:
    """The RFC 6749 §4.1.1 and OpenID Connect request parameters, declared for the
    query allow-list and the OpenAPI document; the handler reads them itself, and
    ignores those it does not implement (RFC 6749 §3.1)."""


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint (RFC 6749 §4.1.1, code + PKCE S256 only)",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def authorize_endpoint(
    request: Request,
    svc: ServicesDep,
    _declared: Annotated[None, Depends(_authorization_parameters)],
    browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE, include_in_schema=False)] = None,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = None,
) -> Response:
    """Check the request, then log the user in (or reuse their session) and redirect back."""
    try:
        params = single_valued(list(request.query_params.multi_items()))
    except OAuthError as exc:
        raise PageError("The request repeats a parameter.") from exc
    auth = svc.authserver
    client = await auth.clients.get(params.get("client_id", "")[:100])
    try:
        checked = authorize.check(params, client)
    except RedirectError as exc:
        return _see_other(authorize.error_redirect(exc, svc.settings.issuer))
    assert client is not None  # noqa: S101 - check() refuses a missing client
    browser_id = browser if browser and len(browser) <= 100 else secrets.token_urlsafe(32)
    live = await auth.interactions.session(session)
    step = await auth.interactions.start(checked, client, browser_id, live)
    response = await _continue(step, svc, session)
    _set_cookie(response, svc, BROWSER_COOKIE, browser_id, 86_400 * 365)
    return response


async def _continue(step: Step, svc: Services, session: str | None) -> Response:
    """Send the browser to the next stage page, or back to the client."""
    if step.redirect is None:
        return _see_other(f"{_STAGE_PATHS[step.stage or '']}?interaction={step.interaction_id}")
    response = _see_other(step.redirect)
    if step.user_id and step.app_id:
        live = await svc.authserver.interactions.session(session)
        if live is None or live.user_id != step.user_id:
            value = await svc.authserver.interactions.open_session(
                step.app_id, step.user_id, list(step.amr)
            )
            _set_cookie(response, svc, SESSION_COOKIE, value, svc.settings.oauth.session_ttl)
    return response


_STAGE_PATHS = {
    interaction.LOGIN: "/oauth/login",
    interaction.MFA: "/oauth/login/mfa",
    interaction.ENROL: "/oauth/login/enrol",
    interaction.CONSENT: "/oauth/login/consent",
}


async def _pending(svc: Services, interaction_id: str | None, browser: str | None) -> Pending:
    if not interaction_id:
        raise PageError("This login page has expired. Go back to the application and retry.")
    return await svc.authserver.interactions.load(interaction_id, browser)


def _context(pending: Pending, **extra: object) -> dict[str, Any]:
    return {
        "form_goes_to": pending.request.redirect_uri,
        "interaction": pending.record.id,
        "csrf": pending.record.csrf,
        "client_name": pending.client.record.name,
        **extra,
    }


Browser = Annotated[str | None, Cookie(alias=BROWSER_COOKIE, include_in_schema=False)]
Session = Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)]
InteractionId = Annotated[str | None, Query(alias="interaction", max_length=100)]


async def _submitted(
    request: Request, svc: Services, browser: str | None, stage: str
) -> tuple[dict[str, str], Pending]:
    form = await _form(request)
    pending = await _pending(svc, form.get("interaction"), browser)
    svc.authserver.interactions.check_csrf(pending, form.get("csrf"), stage)
    return form, pending


def _login_page(svc: Services, pending: Pending, error: str | None = None) -> HTMLResponse:
    limit = svc.settings.oauth.password_max_length
    return _page("login.html", **_context(pending, max_password=limit, error=error))


@router.get("/oauth/login", summary="Login page", response_class=HTMLResponse, responses=_HTML)
async def login_page(
    svc: ServicesDep, browser: Browser = None, interaction_id: InteractionId = None
) -> Response:
    """The username and password form."""
    return _login_page(svc, await _pending(svc, interaction_id, browser))


@router.post(
    "/oauth/login",
    summary="Submit the login form",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def login_submit(
    request: Request, svc: ServicesDep, browser: Browser = None, session: Session = None
) -> Response:
    """Check the password; the same answer for every kind of failure."""
    form, pending = await _submitted(request, svc, browser, interaction.LOGIN)
    step = await svc.authserver.interactions.password(
        pending, form.get("username", ""), form.get("password", ""), origin_of(request)
    )
    if step is None:
        return _login_page(svc, pending, _GENERIC_LOGIN_ERROR)
    return await _continue(step, svc, session)


@router.get(
    "/oauth/login/mfa", summary="Second-factor page", response_class=HTMLResponse, responses=_HTML
)
async def mfa_page(
    svc: ServicesDep, browser: Browser = None, interaction_id: InteractionId = None
) -> Response:
    """Ask for a TOTP or recovery code."""
    return _page("mfa.html", **_context(await _pending(svc, interaction_id, browser)))


@router.post(
    "/oauth/login/mfa",
    summary="Submit a second-factor code",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def mfa_submit(
    request: Request, svc: ServicesDep, browser: Browser = None, session: Session = None
) -> Response:
    """Check the code; a wrong one asks again (and counts as a failed login)."""
    form, pending = await _submitted(request, svc, browser, interaction.MFA)
    step = await svc.authserver.interactions.second_factor(
        pending, form.get("code", ""), origin_of(request)
    )
    if step is None:
        return _page("mfa.html", **_context(pending, error="That code is not valid."))
    return await _continue(step, svc, session)


async def _enrol_page(svc: Services, pending: Pending, error: str | None = None) -> HTMLResponse:
    secret = await svc.authserver.interactions.enrolment_secret(pending)
    user_id = pending.record.user_id or ""
    credentials = await svc.authserver.logins.credentials(pending.client.app_id, user_id)
    account = credentials.username if credentials else user_id
    uri = mfa.provisioning_uri(secret, account=account, issuer=svc.settings.oauth.mfa_issuer)
    context = _context(pending, secret=secret, qr_svg=mfa.qr_svg(uri), error=error)
    return _page("enrol.html", **context)


@router.get(
    "/oauth/login/enrol",
    summary="TOTP enrolment page",
    response_class=HTMLResponse,
    responses=_HTML,
)
async def enrol_page(
    svc: ServicesDep, browser: Browser = None, interaction_id: InteractionId = None
) -> Response:
    """Show the QR code and key of a new TOTP secret."""
    pending = await _pending(svc, interaction_id, browser)
    _require_stage(pending, interaction.ENROL)
    return await _enrol_page(svc, pending)


def _require_stage(pending: Pending, stage: str) -> None:
    if pending.record.stage != stage:
        raise PageError("This step is already done. Go back to the application and retry.")


@router.post(
    "/oauth/login/enrol",
    summary="Confirm TOTP enrolment",
    response_class=HTMLResponse,
    responses=_HTML,
)
async def enrol_submit(request: Request, svc: ServicesDep, browser: Browser = None) -> Response:
    """Turn TOTP on with a first code, then show the recovery codes once."""
    form, pending = await _submitted(request, svc, browser, interaction.ENROL)
    codes = await svc.authserver.interactions.enrol(
        pending, form.get("code", ""), origin_of(request)
    )
    if codes is None:
        return await _enrol_page(svc, pending, "That code is not valid. Try the next one.")
    return _page("recovery.html", **_context(pending, codes=codes))


@router.post(
    "/oauth/login/enrolled",
    summary="Continue after saving recovery codes",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def enrolled_submit(
    request: Request, svc: ServicesDep, browser: Browser = None, session: Session = None
) -> Response:
    """Go on with the login once the recovery codes were shown."""
    _form_data, pending = await _submitted(request, svc, browser, "enrolled")
    step = await svc.authserver.interactions.after_enrolment(pending)
    return await _continue(step, svc, session)


@router.get(
    "/oauth/login/consent", summary="Consent page", response_class=HTMLResponse, responses=_HTML
)
async def consent_page(
    svc: ServicesDep, browser: Browser = None, interaction_id: InteractionId = None
) -> Response:
    """Ask the user to allow a third-party application the scopes it asked for."""
    pending = await _pending(svc, interaction_id, browser)
    asked = sorted(pending.request.scope)
    listed = [(name, _SCOPE_TEXT.get(name, name)) for name in asked]
    return _page("consent.html", **_context(pending, scopes=listed))


_SCOPE_TEXT = {**scope_names.DESCRIPTIONS, "openid": "Know who you are (your user id)."}


@router.post(
    "/oauth/login/consent",
    summary="Submit the consent decision",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def consent_submit(
    request: Request, svc: ServicesDep, browser: Browser = None, session: Session = None
) -> Response:
    """Allow or deny; either way the browser goes back to the application."""
    form, pending = await _submitted(request, svc, browser, interaction.CONSENT)
    approved = form.get("decision") == "allow"
    step = await svc.authserver.interactions.consent(pending, approved, origin_of(request))
    return await _continue(step, svc, session)


def _logout_csrf(browser: str | None) -> str:
    """A token only this browser's pages can know: derived from its HttpOnly cookie."""
    value = (browser or "").encode()
    return hashlib.sha256(b"bastion-logout:" + value).hexdigest()


@router.get("/oauth/logout", summary="Sign-out page", response_class=HTMLResponse, responses=_HTML)
async def logout_page(
    request: Request,
    svc: ServicesDep,
    browser: Browser = None,
    client_id: _Param = None,
    post_logout_redirect_uri: _Param = None,
    state: _Param = None,
    id_token_hint: _Param = None,
) -> Response:
    """Confirm sign-out (a GET never changes state)."""
    params = dict(request.query_params)
    browser_id = browser if browser and len(browser) <= 100 else secrets.token_urlsafe(32)
    context: dict[str, Any] = {
        "csrf": _logout_csrf(browser_id),
        "client_id": params.get("client_id"),
        "post_logout_redirect_uri": params.get("post_logout_redirect_uri"),
        "state": params.get("state"),
    }
    target = await _post_logout_target(svc, {k: v for k, v in params.items() if v is not None})
    response = _page("logout.html", form_goes_to=target, **context)
    if browser_id != browser:
        _set_cookie(response, svc, BROWSER_COOKIE, browser_id, 86_400 * 365)
    return response


@router.post(
    "/oauth/logout",
    summary="Sign out",
    response_class=HTMLResponse,
    responses={**_HTML, **_SEE_OTHER},
)
async def logout_submit(
    request: Request, svc: ServicesDep, browser: Browser = None, session: Session = None
) -> Response:
    """End the browser session; go back to a registered post-logout URI if one was named."""
    form = await _form(request)
    if not browser or not hmac.compare_digest(form.get("csrf", ""), _logout_csrf(browser)):
        return _error_page("This form is no longer valid.")
    await svc.authserver.interactions.end_session(session, origin_of(request))
    target = await _post_logout_target(svc, form)
    response = _see_other(target) if target else _page("logout.html", done=True)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(svc), httponly=True)
    return response


async def _post_logout_target(svc: Services, form: dict[str, str]) -> str | None:
    uri = form.get("post_logout_redirect_uri")
    client = await svc.authserver.clients.get(form.get("client_id", "")[:100])
    # Only to an exact redirect URI the client registered: no open redirect.
    if not uri or client is None or uri not in client.profile.redirect_uris:
        return None
    return authorize.redirect_to(uri, {"state": form.get("state")})
