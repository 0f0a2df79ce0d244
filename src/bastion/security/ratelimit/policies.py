"""Policies as data: named quotas over windows, for a scope, on endpoint groups.

A policy comes from the settings (``ratelimit.policies``) or from an override. Each
quota becomes one IETF ``RateLimit-Policy`` item named ``<policy>-<window>s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from limits import parse

from bastion.core.settings import RateLimitPolicy, RateLimitSettings

FRAMES_POLICY = "ws-frames"
"""The policy holding the inbound WebSocket frame quota of each socket."""

GROUPS = (
    "all",
    "auth",
    "message-send",
    "channel-create",
    "invites",
    "search",
    "reads",
    "writes",
    "ws-connect",
)


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` requests in any ``window`` seconds."""

    name: str
    limit: int
    window: int


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled policy: what it counts, how much, and what to do if the store fails."""

    name: str
    groups: frozenset[str]
    scope: str
    quotas: tuple[Quota, ...]
    on_store_failure: str = "local"
    baseline_factor: float | None = None

    def scaled(self, factor: float) -> Policy:
        """The same policy with every quota multiplied by ``factor`` (at least 1)."""
        quotas = tuple(replace(q, limit=max(1, int(q.limit * factor))) for q in self.quotas)
        return replace(self, quotas=quotas)


def parse_quota(policy: str, text: str, scale: float = 1.0) -> Quota:
    """Read ``"5/second"``, ``"60 per minute"``, ``"10 per 5 minutes"`` into a quota."""
    item = parse(text)
    window = int(item.get_expiry())
    return Quota(f"{policy}-{window}s", max(1, int(item.amount * scale)), window)


def compile_policy(spec: RateLimitPolicy, scale: float = 1.0) -> Policy:
    """Turn a configured policy into its compiled form."""
    return Policy(
        name=spec.name,
        groups=frozenset(spec.groups),
        scope=spec.scope,
        quotas=tuple(parse_quota(spec.name, q, scale) for q in spec.quotas),
        on_store_failure=spec.on_store_failure,
        baseline_factor=spec.baseline_factor,
    )


class PolicySet:
    """The configured policies, indexed by endpoint group for a cheap lookup per request."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)
        self.by_name: Mapping[str, Policy] = {p.name: p for p in self.policies}
        self._by_group = {
            group: tuple(p for p in self.policies if group in p.groups or "all" in p.groups)
            for group in GROUPS
        }

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> PolicySet:
        """Compile ``settings.policies``, and the per-socket frame quota as ``ws-frames``.

        The frame quota belongs to no endpoint group (it is applied per socket, not per
        request) but is a policy like the others, so overrides cover it too.
        """
        frames = Policy(
            name=FRAMES_POLICY,
            groups=frozenset(),
            scope="user",
            quotas=(parse_quota(FRAMES_POLICY, settings.ws_frames),),
        )
        return cls([*(compile_policy(s, settings.scale) for s in settings.policies), frames])

    def for_group(self, group: str) -> tuple[Policy, ...]:
        """Every policy that counts requests of ``group``."""
        return self._by_group.get(group, ())


_AUTH_PREFIXES = ("/oauth/", "/authorize", "/login", "/v1/auth/")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def classify(kind: str, method: str, path: str) -> str:
    """The endpoint group of a request, from its ASGI type, method and path alone."""
    if kind == "websocket":
        return "ws-connect"
    if path.startswith(_AUTH_PREFIXES):
        return "auth"
    if "/search" in path:
        return "search"
    if method in _READ_METHODS:
        return "reads"
    if method == "POST" and path.startswith("/v1/channels"):
        return _channel_post(path)
    return "writes"


def _channel_post(path: str) -> str:
    parts = path.rstrip("/").split("/")  # "", "v1", "channels", id, sub
    if len(parts) == 3:
        return "channel-create"
    if len(parts) == 5 and parts[4] == "messages":
        return "message-send"
    if len(parts) == 5 and parts[4] == "members":
        return "invites"
    return "writes"
