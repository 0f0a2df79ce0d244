"""The authorization matrix, generated from the mounted routes.

For every declared route, caller role (anonymous, member, moderator, admin, auditor,
a backend with its scopes and one without) and ownership (own object, same channel,
other channel, other app), a real HTTP call is made and its status compared with the
prediction: function level from the policy table (``decide`` on the caller's roles and
token scopes), object level from the route's rule below. List routes are also checked
never to include objects the caller may not see.

A route mounted without an entry in ``RULES`` fails ``test_every_route_has_a_rule``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bastion.chat.messages import Draft
from bastion.core.ids import Kind, new_id
from bastion.http.permissions import declared
from bastion.observe.events import Origin
from bastion.security.policy import Policy, decide
from bastion.security.principal import Principal
from tests.conftest import Databases, make_settings, start_server
from tests.support.problem_checks import same_not_found
from tests.support.roles import ALL_USER_SCOPES, grant
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

USER_ROLES = {"member": ("member",), "moderator": ("moderator",), "admin": ("admin",)}
USER_ROLES["auditor"] = ("auditor",)
CALLERS = ("anonymous", *USER_ROLES, "service", "service_unscoped")
OWN, SAME, OTHER, FOREIGN, APP = "own", "same_channel", "other_channel", "other_app", "app"
CHANNEL_CASES = (OWN, SAME, OTHER, FOREIGN)
USER_CASES = (OWN, FOREIGN)


@dataclass(slots=True)
class Caller:
    """One column of the matrix: a token, its roles and scopes."""

    name: str
    headers: dict[str, str]
    roles: frozenset[str]
    scopes: frozenset[str]
    user: User | None = None


@dataclass(slots=True)
class World:
    """The shared tenants and the callers of the matrix."""

    server: ServerThread
    http: httpx.AsyncClient
    tenant: Tenant
    other: Tenant
    peer: User
    third: User
    foreign: User
    callers: dict[str, Caller] = field(default_factory=dict)

    def principal(self, user_id: str, app_id: str | None = None) -> Principal:
        """A principal acting for a user, to set up objects through the domain."""
        return Principal(
            app_id=app_id or self.tenant.app_id,
            client_id=self.tenant.client_id,
            subject=user_id,
            scopes=frozenset({"chat:read", "chat:write"}),
            token_id=new_id(Kind.TOKEN),
            expires_at=int(time.time()) + 600,
            roles=frozenset({"member"}),
        )

    async def channel(self, case: str, me: User) -> tuple[str, str]:
        """A channel for the ownership case, and a message in it not by ``me``."""
        if case == FOREIGN:
            foreign = await self.other.channel(self.foreign, [])
            msg = await self.other.send(self.foreign, foreign["id"], "x")
            return foreign["id"], msg["id"]
        members = [self.third] if case == OTHER else [me, self.third]
        channel = await self.tenant.channel(self.peer, members)
        if case == OWN:
            await self.tenant.http.patch(
                f"/v1/channels/{channel['id']}/members/{me.id}",
                json={"role": "owner"},
                headers=self.peer.headers,
            )
        msg = await self.tenant.send(self.peer, channel["id"], "x")
        return channel["id"], msg["id"]

    def send_as(self, user_id: str, channel_id: str) -> str:
        """Post as a user through the domain (an auditor cannot post over HTTP)."""
        services = self.server.services
        entry, _ = self.server.run(
            services.chat.messages.send(self.principal(user_id), channel_id, Draft(text="own"))
        )
        return entry.message.id

    def sanction(self, kind: str, owner_id: str, channel_id: str, user_id: str) -> None:
        """Ban or mute a member as the channel's owner, through the domain."""
        services = self.server.services
        moderation = services.chat.moderation
        act = moderation.ban if kind == "bans" else moderation.mute
        self.server.run(act(self.principal(owner_id), channel_id, user_id, None, Origin()))


@dataclass(frozen=True, slots=True)
class Case:
    """The request to make for one route, caller and ownership case."""

    url: str
    body: Any = None
    absent: frozenset[str] = frozenset()
    """Ids a list answer must not contain."""


Rule = Callable[[str, str], int]
"""(caller role, ownership case) -> status when the route-level check passes."""


def reads(ok: int = 200) -> Rule:
    """Visible in own and same channel; 404 elsewhere."""
    return lambda role, case: ok if case in (OWN, SAME) else 404


def manages(ok: int, *, app_wide: frozenset[str] = frozenset()) -> Rule:
    """The channel's owner may; a plain member gets 403; app-wide roles anywhere in the
    app; the caller's own channel only when they own it."""

    def rule(role: str, case: str) -> int:
        if case == FOREIGN:
            return 404
        if case == OWN or role in app_wide:
            return ok
        return 403 if case == SAME else 404

    return rule


def authored(ok: int) -> Rule:
    """Only the author: 403 on another's visible message, 404 when invisible."""
    return lambda role, case: ok if case == OWN else (403 if case == SAME else 404)


def deletes(role: str, case: str) -> int:
    """Own messages; app moderators and admins delete any visible message."""
    if case in (OTHER, FOREIGN):
        return 404
    return 204 if case == OWN or role in ("moderator", "admin") else 403


def always(ok: int) -> Rule:
    """No object: the route-level check decides."""
    return lambda role, case: ok


def in_app(ok: int) -> Rule:
    """An object of the caller's app: fine; of another app: 404."""
    return lambda role, case: ok if case == OWN else 404


MODERATORS = frozenset({"moderator", "admin"})


@dataclass(frozen=True, slots=True)
class Spec:
    """How to call a route and what it should answer once the route check passes."""

    cases: tuple[str, ...]
    rule: Rule
    build: Callable[[World, Caller, str], Any]


async def _chat(world: World, caller: Caller, case: str) -> dict[str, str]:
    """Ids for a chat route: channel, message (mine when own), a member to act on."""
    me = caller.user or world.peer
    channel_id, message_id = await world.channel(case, me)
    if case == OWN:
        message_id = world.send_as(me.id, channel_id)
    target = world.foreign.id if case == FOREIGN else world.third.id
    return {"channel": channel_id, "message": message_id, "target": target}


def _chat_case(path: str, body: Any = None) -> Callable[[World, Caller, str], Any]:
    async def build(world: World, caller: Caller, case: str) -> Case:
        ids = await _chat(world, caller, case)
        return Case(path.format(**ids), body(ids) if callable(body) else body)

    return build


def _sanctioned(kind: str) -> Callable[[World, Caller, str], Any]:
    async def build(world: World, caller: Caller, case: str) -> Case:
        ids = await _chat(world, caller, case)
        if case != FOREIGN:
            owner = caller.user.id if case == OWN and caller.user else world.peer.id
            world.sanction(kind, owner, ids["channel"], ids["target"])
        return Case(f"/v1/channels/{ids['channel']}/{kind}/{ids['target']}")

    return build


async def _new_user_case(world: World, caller: Caller, case: str) -> Case:
    ids = await _chat(world, caller, case)
    fresh = await world.tenant.user(f"add-{new_id(Kind.USER)[-8:]}")
    return Case(f"/v1/channels/{ids['channel']}/members", {"user_id": fresh.id})


async def _list_channels(world: World, caller: Caller, case: str) -> Case:
    hidden = set()
    for other in (OTHER, FOREIGN):
        hidden.add((await world.channel(other, caller.user or world.peer))[0])
    return Case("/v1/channels", absent=frozenset(hidden))


def _users(path: str, body: Any = None) -> Callable[[World, Caller, str], Any]:
    async def build(world: World, caller: Caller, case: str) -> Case:
        if case == FOREIGN:
            target = world.foreign.id
        else:
            target = (await world.tenant.user(f"u-{new_id(Kind.USER)[-8:]}")).id
        return Case(path.format(user=target), body() if callable(body) else body)

    return build


def _fixed(path: str, body: Any = None) -> Callable[[World, Caller, str], Any]:
    async def build(world: World, caller: Caller, case: str) -> Case:
        return Case(path, body() if callable(body) else body)

    return build


async def _list_users(world: World, caller: Caller, case: str) -> Case:
    return Case("/v1/users", absent=frozenset({world.foreign.id}))


async def _list_members(world: World, caller: Caller, case: str) -> Case:
    ids = await _chat(world, caller, case)
    return Case(f"/v1/channels/{ids['channel']}/members", absent=frozenset({world.foreign.id}))


async def _search(world: World, caller: Caller, case: str) -> Case:
    """Search for a word that is also in channels the caller may not see."""
    word = f"needle{new_id(Kind.USER)[-6:].lower()}"
    hidden = set()
    for other in (OTHER, FOREIGN):
        channel_id, _ = await world.channel(other, caller.user or world.peer)
        tenant, author = (
            (world.other, world.foreign)
            if other == FOREIGN
            else (
                world.tenant,
                world.peer,
            )
        )
        hidden.add((await tenant.send(author, channel_id, f"the {word}"))["id"])
    return Case(f"/v1/search/messages?q={word}", absent=frozenset(hidden))


def _override(path: str) -> Callable[[World, Caller, str], Any]:
    """A rate-limit override that exists (made by the backend) for the DELETE to remove."""
    users = _users(path)

    async def build(world: World, caller: Caller, case: str) -> Case:
        call: Case = await users(world, caller, case)
        if case != FOREIGN:
            backend = world.callers["service"]
            made = await world.http.put(
                call.url, json={"quotas": ["50/second"]}, headers=backend.headers
            )
            assert made.status_code == 200, made.text
        return call

    return build


async def _custom_role(world: World, caller: Caller, case: str) -> Case:
    name = f"m-{new_id(Kind.USER)[-6:].lower()}"
    return Case(f"/v1/admin/policy/roles/{name}", {"permissions": ["channel:read"]})


async def _reset_role(world: World, caller: Caller, case: str) -> Case:
    name = f"r-{new_id(Kind.USER)[-6:].lower()}"
    admin = world.callers["admin"]
    put = await world.http.put(
        f"/v1/admin/policy/roles/{name}", json={"permissions": []}, headers=admin.headers
    )
    assert put.status_code == 200, put.text
    return Case(f"/v1/admin/policy/roles/{name}")


def _new_external() -> dict[str, str]:
    return {"external_id": f"new-{new_id(Kind.USER)[-10:]}", "display_name": "N"}


def _clients(path: str, body: Any = None) -> Callable[[World, Caller, str], Any]:
    """The app's own backend client, or another app's."""

    async def build(world: World, caller: Caller, case: str) -> Case:
        tenant = world.other if case == FOREIGN else world.tenant
        return Case(path.format(client=tenant.client_id), body)

    return build


def _with_login(path: str, body: Any = None) -> Callable[[World, Caller, str], Any]:
    """A user of the app who has a username and password (set by the backend)."""
    users = _users(path, body)

    async def build(world: World, caller: Caller, case: str) -> Case:
        call: Case = await users(world, caller, case)
        if case != FOREIGN:
            login = call.url.rsplit("/", 1)[0] + "/login"
            made = await world.http.put(
                login, json=_login(), headers=world.callers["service"].headers
            )
            assert made.status_code == 204, made.text
        return call

    return build


def _login() -> dict[str, str]:
    return {
        "username": f"u{new_id(Kind.USER)[-10:].lower()}",
        "password": "violet-harbour-71-quartz",
    }


PAST = {"issued_before": "2020-01-01T00:00:00Z"}
C, M = "/v1/channels/{channel}", "/v1/messages/{message}"

RULES: dict[tuple[str, str], Spec] = {
    ("POST", "/v1/channels/{channel_id}/messages"): Spec(
        CHANNEL_CASES, reads(201), _chat_case(C + "/messages", {"text": "hi"})
    ),
    ("GET", "/v1/channels/{channel_id}/messages"): Spec(
        CHANNEL_CASES, reads(), _chat_case(C + "/messages")
    ),
    ("GET", "/v1/messages/{message_id}"): Spec(CHANNEL_CASES, reads(), _chat_case(M)),
    ("GET", "/v1/search/messages"): Spec((APP,), always(200), _search),
    ("PATCH", "/v1/messages/{message_id}"): Spec(
        CHANNEL_CASES, authored(200), _chat_case(M, {"text": "edited"})
    ),
    ("DELETE", "/v1/messages/{message_id}"): Spec(CHANNEL_CASES, deletes, _chat_case(M)),
    ("PUT", "/v1/messages/{message_id}/reactions/{reaction}"): Spec(
        CHANNEL_CASES, reads(), _chat_case(M + "/reactions/%F0%9F%91%8D")
    ),
    ("DELETE", "/v1/messages/{message_id}/reactions/{reaction}"): Spec(
        CHANNEL_CASES, reads(204), _chat_case(M + "/reactions/%F0%9F%91%8D")
    ),
    ("POST", "/v1/channels"): Spec((APP,), always(201), _fixed("/v1/channels", {"type": "group"})),
    ("GET", "/v1/channels"): Spec((APP,), always(200), _list_channels),
    ("GET", "/v1/channels/{channel_id}"): Spec(CHANNEL_CASES, reads(), _chat_case(C)),
    ("PATCH", "/v1/channels/{channel_id}"): Spec(
        CHANNEL_CASES, manages(200), _chat_case(C, {"name": "renamed"})
    ),
    ("GET", "/v1/channels/{channel_id}/members"): Spec(CHANNEL_CASES, reads(), _list_members),
    ("POST", "/v1/channels/{channel_id}/members"): Spec(
        CHANNEL_CASES, manages(201), _new_user_case
    ),
    ("GET", "/v1/channels/{channel_id}/members/{user_id}"): Spec(
        CHANNEL_CASES, reads(), _chat_case(C + "/members/{target}")
    ),
    ("PATCH", "/v1/channels/{channel_id}/members/{user_id}"): Spec(
        CHANNEL_CASES, manages(200), _chat_case(C + "/members/{target}", {"role": "read-only"})
    ),
    ("DELETE", "/v1/channels/{channel_id}/members/{user_id}"): Spec(
        CHANNEL_CASES, manages(204), _chat_case(C + "/members/{target}")
    ),
    ("PUT", "/v1/channels/{channel_id}/read"): Spec(
        CHANNEL_CASES, reads(), _chat_case(C + "/read", lambda ids: {"message_id": ids["message"]})
    ),
    ("PUT", "/v1/channels/{channel_id}/bans/{user_id}"): Spec(
        CHANNEL_CASES, manages(200, app_wide=MODERATORS), _chat_case(C + "/bans/{target}", {})
    ),
    ("DELETE", "/v1/channels/{channel_id}/bans/{user_id}"): Spec(
        CHANNEL_CASES, manages(204, app_wide=MODERATORS), _sanctioned("bans")
    ),
    ("PUT", "/v1/channels/{channel_id}/mutes/{user_id}"): Spec(
        CHANNEL_CASES, manages(200, app_wide=MODERATORS), _chat_case(C + "/mutes/{target}", {})
    ),
    ("DELETE", "/v1/channels/{channel_id}/mutes/{user_id}"): Spec(
        CHANNEL_CASES, manages(204, app_wide=MODERATORS), _sanctioned("mutes")
    ),
    ("GET", "/v1/channels/{channel_id}/acl"): Spec(
        CHANNEL_CASES, manages(200, app_wide=frozenset({"admin"})), _chat_case(C + "/acl")
    ),
    ("PUT", "/v1/channels/{channel_id}/acl"): Spec(
        CHANNEL_CASES,
        manages(200, app_wide=frozenset({"admin"})),
        _chat_case(C + "/acl", {"entries": []}),
    ),
    ("POST", "/v1/users"): Spec((APP,), always(201), _fixed("/v1/users", _new_external)),
    ("GET", "/v1/users"): Spec((APP,), always(200), _list_users),
    ("GET", "/v1/users/me"): Spec((APP,), always(200), _fixed("/v1/users/me")),
    ("GET", "/v1/users/{user_id}"): Spec(USER_CASES, in_app(200), _users("/v1/users/{user}")),
    ("PATCH", "/v1/users/{user_id}"): Spec(
        USER_CASES, in_app(200), _users("/v1/users/{user}", {"display_name": "New"})
    ),
    ("POST", "/v1/users/{user_id}/deactivation"): Spec(
        USER_CASES, in_app(200), _users("/v1/users/{user}/deactivation")
    ),
    ("GET", "/v1/admin/permissions"): Spec((APP,), always(200), _fixed("/v1/admin/permissions")),
    ("GET", "/v1/admin/policy"): Spec((APP,), always(200), _fixed("/v1/admin/policy")),
    ("PUT", "/v1/admin/policy/roles/{role}"): Spec((APP,), always(200), _custom_role),
    ("DELETE", "/v1/admin/policy/roles/{role}"): Spec((APP,), always(204), _reset_role),
    ("GET", "/v1/admin/mfa-policy"): Spec((APP,), always(200), _fixed("/v1/admin/mfa-policy")),
    ("PUT", "/v1/admin/mfa-policy"): Spec(
        (APP,),
        always(200),
        _fixed("/v1/admin/mfa-policy", {"required_for_everyone": False, "required_roles": []}),
    ),
    ("GET", "/v1/admin/roles"): Spec((APP,), always(200), _fixed("/v1/admin/roles")),
    ("GET", "/v1/admin/roles/{user_id}"): Spec(
        USER_CASES, in_app(200), _users("/v1/admin/roles/{user}")
    ),
    ("PUT", "/v1/admin/roles/{user_id}"): Spec(
        USER_CASES, in_app(200), _users("/v1/admin/roles/{user}", {"roles": ["member"]})
    ),
    ("GET", "/v1/rate-limits"): Spec((APP,), always(200), _fixed("/v1/rate-limits")),
    ("PUT", "/v1/rate-limits/{policy}"): Spec(
        (APP,), always(200), _fixed("/v1/rate-limits/message-send", {"quotas": ["50/second"]})
    ),
    ("DELETE", "/v1/rate-limits/{policy}"): Spec(
        (APP,), always(204), _override("/v1/rate-limits/message-send")
    ),
    ("PUT", "/v1/users/{user_id}/rate-limits/{policy}"): Spec(
        USER_CASES,
        in_app(200),
        _users("/v1/users/{user}/rate-limits/message-send", {"quotas": ["50/second"]}),
    ),
    ("DELETE", "/v1/users/{user_id}/rate-limits/{policy}"): Spec(
        USER_CASES, in_app(204), _override("/v1/users/{user}/rate-limits/message-send")
    ),
    ("GET", "/v1/audit/events"): Spec((APP,), always(200), _fixed("/v1/audit/events")),
    ("GET", "/v1/audit/events/export"): Spec(
        (APP,), always(200), _fixed("/v1/audit/events/export")
    ),
    ("GET", "/metrics"): Spec((APP,), always(200), _fixed("/metrics")),
    ("POST", "/v1/token-revocation"): Spec(
        (APP,), always(200), _fixed("/v1/token-revocation", PAST)
    ),
    ("POST", "/v1/users/{user_id}/token-revocation"): Spec(
        USER_CASES, in_app(200), _users("/v1/users/{user}/token-revocation", PAST)
    ),
    ("POST", "/v1/clients"): Spec(
        (APP,),
        always(201),
        _fixed("/v1/clients", {"name": "web", "redirect_uris": ["https://app.example/cb"]}),
    ),
    ("GET", "/v1/clients"): Spec((APP,), always(200), _fixed("/v1/clients")),
    ("GET", "/v1/app"): Spec((APP,), always(200), _fixed("/v1/app")),
    ("GET", "/v1/admin/alerts"): Spec((APP,), always(200), _fixed("/v1/admin/alerts")),
    ("GET", "/v1/clients/{client_id}"): Spec(
        USER_CASES, in_app(200), _clients("/v1/clients/{client}")
    ),
    ("PATCH", "/v1/clients/{client_id}"): Spec(
        USER_CASES, in_app(200), _clients("/v1/clients/{client}", {"name": "backend"})
    ),
    ("POST", "/v1/clients/{client_id}/secret"): Spec(
        USER_CASES,
        in_app(200),
        _clients("/v1/clients/{client}/secret", {"overlap_seconds": 86_400}),
    ),
    ("PUT", "/v1/users/{user_id}/login"): Spec(
        USER_CASES, in_app(204), _users("/v1/users/{user}/login", _login)
    ),
    ("PUT", "/v1/users/{user_id}/mfa"): Spec(
        USER_CASES, in_app(204), _with_login("/v1/users/{user}/mfa", {"required": True})
    ),
    ("DELETE", "/v1/users/{user_id}/mfa"): Spec(
        USER_CASES, in_app(204), _with_login("/v1/users/{user}/mfa")
    ),
    ("POST", "/v1/users/{user_id}/unlock"): Spec(
        USER_CASES, in_app(204), _with_login("/v1/users/{user}/unlock")
    ),
}
"""Every protected route: the ownership cases it takes and its object-level rule."""


def route_level(caller: Caller, permission: str) -> int | None:
    """The route-level answer the policy table predicts, or None when it lets them in."""
    if caller.name == "anonymous":
        return 401
    if not decide(Policy.default(), caller.roles, caller.scopes, permission).allowed:
        return 403
    return None


def _placeholder(path: str) -> Case:
    """Ids that name nothing: a route-level refusal comes before any lookup."""
    fill = {"reaction": "%F0%9F%91%8D", "role": "member", "policy": "message-send"}
    return Case(re.sub(r"\{(\w+)\}", lambda m: fill.get(m.group(1), new_id(Kind.USER)), path))


_ID = re.compile("|".join(rf"\b{kind.value}_[0-9A-Z]{{26}}\b" for kind in Kind))


def never_existing(url: str) -> str:
    """``url`` with its first id (the object the caller may not see) replaced by a
    fresh id of the same kind: one that never existed."""
    found = _ID.search(url)
    assert found is not None, url
    kind = Kind(found.group().split("_", 1)[0])
    return url[: found.start()] + new_id(kind) + url[found.end() :]


@pytest.fixture(scope="module")
def matrix_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server of its own: the matrix changes policies and revokes old tokens. Rate
    limits and load shedding are off: they are tested elsewhere and would only add 429s
    and 503s to a burst of a thousand requests."""
    settings = make_settings(
        tmp_path_factory.mktemp("matrix"), databases.new(), ratelimit={"enabled": False}
    )
    running = start_server(settings)
    yield running
    running.stop()


async def new_caller(tenant: Tenant, name: str) -> Caller:
    """A caller of the matrix: a token of the kind its name says, for ``tenant``."""
    if name == "anonymous":
        return Caller(name, {}, frozenset(), frozenset())
    if name.startswith("service"):
        scope = "tokens:exchange" if name == "service_unscoped" else None
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        response = await tenant.token_request(**form)
        body = response.json()
        return Caller(
            name,
            {"Authorization": f"Bearer {body['access_token']}"},
            frozenset({"service"}),
            frozenset(body["scope"].split()),
        )
    user = await tenant.user(f"caller-{name}")
    grant(tenant, user.id, *USER_ROLES[name])
    user.token = await tenant.user_token(user.id, scope=ALL_USER_SCOPES)
    return Caller(
        name, user.headers, frozenset(USER_ROLES[name]), frozenset(ALL_USER_SCOPES.split()), user
    )


async def build_world(server: ServerThread, http: httpx.AsyncClient) -> World:
    """Two tenants, the peers every case shares and one caller of each kind."""
    tenant = new_tenant(server, http)
    other = new_tenant(server, http, name="other app")
    built = World(
        server,
        http,
        tenant,
        other,
        await tenant.user("peer"),
        await tenant.user("third"),
        await other.user("foreign"),
    )
    for name in CALLERS:
        built.callers[name] = await new_caller(tenant, name)
    return built


@pytest.fixture(scope="module")
async def world(matrix_server: ServerThread) -> AsyncIterator[World]:
    """The tenants, peers and callers every case shares."""
    async with httpx.AsyncClient(base_url=matrix_server.base_url, timeout=20) as http:
        yield await build_world(matrix_server, http)


def test_every_route_has_a_rule(matrix_server: ServerThread) -> None:
    """A protected route added without a matrix entry fails here."""
    protected = {
        (d.method, d.path) for d in declared(matrix_server.app.api) if d.permission is not None
    }
    assert protected == set(RULES)


@pytest.mark.parametrize("route", sorted(RULES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_matrix(world: World, route: tuple[str, str]) -> None:
    """Each caller and ownership case gets exactly the predicted status."""
    permissions = {(d.method, d.path): d.permission for d in declared(world.server.app.api)}
    permission = permissions[route]
    assert permission is not None
    spec = RULES[route]
    failures: list[tuple[str, str, object, object, str]] = []
    for name in CALLERS:
        caller = world.callers[name]
        for case in spec.cases:
            refused = route_level(caller, permission)
            expected = refused or spec.rule(name, case)
            call = _placeholder(route[1]) if refused else await spec.build(world, caller, case)
            response = await world.http.request(
                route[0], call.url, json=call.body, headers=caller.headers
            )
            if response.status_code != expected:
                failures.append((name, case, expected, response.status_code, response.text[:120]))
            elif expected == 404:
                missing = await world.http.request(
                    route[0], never_existing(call.url), json=call.body, headers=caller.headers
                )
                try:
                    same_not_found(response, missing)
                except AssertionError as exc:
                    failures.append((name, case, "404 unlike a missing id", 404, str(exc)[:300]))
            elif call.absent and expected == 200:
                shown = {item.get("id") or item.get("user_id") for item in response.json()["data"]}
                leaked = shown & call.absent
                if leaked:
                    failures.append((name, case, "leak", sorted(leaked), ""))
    assert failures == []


FORBIDDEN_FIELDS: tuple[str, ...] = (
    *("role", "roles", "app_id", "owner_id", "created_at", "created_by", "id"),
    *("version", "is_admin", "permissions", "author_id", "user_id"),
)


def _write_routes(world: World) -> list[tuple[str, str, set[str]]]:
    """(method, path, accepted body fields) of every route that takes a JSON body."""
    document = world.server.app.api.openapi()
    schemas = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None or "application/json" not in body["content"]:
                continue
            ref = body["content"]["application/json"]["schema"]
            ref = ref.get("$ref") or next(s["$ref"] for s in ref.get("anyOf", []) if "$ref" in s)
            fields = set(schemas[ref.rsplit("/", 1)[1]].get("properties", {}))
            found.append((method.upper(), path, fields))
    return found


async def test_mass_assignment_is_refused_on_every_write_schema(world: World) -> None:
    """Every request body refuses fields it does not declare (422 naming the field),
    for a caller who may use the route: nobody sets role, app_id, owner_id, created_at..."""
    permissions = {(d.method, d.path): d.permission for d in declared(world.server.app.api)}
    routes = _write_routes(world)
    assert len(routes) >= 10
    for method, path, fields in routes:
        permission = permissions[(method, path)]
        assert permission is not None
        caller = next(
            c
            for c in world.callers.values()
            if c.name != "anonymous" and not route_level(c, permission)
        )
        spec = RULES[(method, path)]
        call = await spec.build(world, caller, spec.cases[0])
        for name in FORBIDDEN_FIELDS:
            if name in fields:
                continue
            body = {**(call.body or {}), name: "usr_01J0000000000000000000000A"}
            response = await world.http.request(method, call.url, json=body, headers=caller.headers)
            assert response.status_code == 422, (method, path, name, response.text)
            assert any(name in e["field"] for e in response.json()["errors"]), response.text


async def test_method_switching_is_refused(world: World) -> None:
    """A method a path does not declare is 405 even for an admin; a method it declares
    for someone else stays 403 (GET own channel fine, DELETE it is not a route)."""
    mounted: dict[str, set[str]] = {}
    for item in declared(world.server.app.api):
        if item.permission is not None:
            mounted.setdefault(item.path, set()).add(item.method)
    admin = world.callers["admin"]

    def routed(method: str, url: str) -> bool:
        """Whether another template (``/v1/users/{user_id}`` for ``/v1/users/me``) takes it."""
        return any(
            method in methods and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", path), url)
            for path, methods in mounted.items()
        )

    for path, methods in mounted.items():
        url = _placeholder(path).url
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods:
            if routed(method, url):
                continue
            response = await world.http.request(method, url, json={}, headers=admin.headers)
            assert response.status_code == 405, (method, path, response.status_code)
    member = world.callers["member"]
    assert member.user is not None
    roles_url = f"/v1/admin/roles/{member.user.id}"
    assert (
        await world.http.get(roles_url, headers=world.callers["auditor"].headers)
    ).status_code == 403
    put = await world.http.put(roles_url, json={"roles": ["admin"]}, headers=member.headers)
    assert put.status_code == 403


async def test_guessed_ids_of_another_app_look_like_missing_ones(world: World) -> None:
    """BOLA: another app's real channel, message and user answer exactly like ids that
    never existed (same status, type, title and detail)."""
    channel_id, message_id = await world.channel(FOREIGN, world.peer)
    admin = world.callers["admin"]
    service = world.callers["service"]
    pairs = [
        (f"/v1/channels/{channel_id}", f"/v1/channels/{new_id(Kind.CHANNEL)}", admin),
        (f"/v1/messages/{message_id}", f"/v1/messages/{new_id(Kind.MESSAGE)}", admin),
        (
            f"/v1/channels/{channel_id}/acl",
            f"/v1/channels/{new_id(Kind.CHANNEL)}/acl",
            admin,
        ),
        (f"/v1/users/{world.foreign.id}", f"/v1/users/{new_id(Kind.USER)}", service),
        (f"/v1/admin/roles/{world.foreign.id}", f"/v1/admin/roles/{new_id(Kind.USER)}", admin),
    ]
    for real, missing, caller in pairs:
        answers = []
        for url in (real, missing):
            response = await world.http.get(url, headers=caller.headers)
            body = response.json()
            answers.append((response.status_code, body["type"], body["title"], body["detail"]))
        assert answers[0] == answers[1], (real, answers)
        assert answers[0][0] == 404
