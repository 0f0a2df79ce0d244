"""Rate-limit policy and override schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from bastion.http.schemas.common import RequestModel, ResponseModel

QuotaText = Annotated[
    str,
    StringConstraints(
        pattern=r"^\s*\d{1,9}\s*(/|per)\s*(\d{1,6}\s*)?(second|minute|hour|day)s?\s*$",
        max_length=40,
    ),
]


class OverrideIn(RequestModel):
    """New quotas for one policy, replacing its configured ones."""

    quotas: list[QuotaText] = Field(
        min_length=1, max_length=4, description='Quotas such as "10/second", "600/minute".'
    )


class OverrideOut(ResponseModel):
    """An override in force."""

    policy: str
    user_id: str | None
    quotas: list[str]


class QuotaOut(ResponseModel):
    """One configured quota: ``limit`` requests per ``window`` seconds."""

    name: str
    limit: int
    window: int


class PolicyOut(ResponseModel):
    """A configured policy."""

    name: str
    groups: list[str]
    scope: str
    quotas: list[QuotaOut]
    on_store_failure: str
    baseline_factor: float | None


class RateLimitsOut(ResponseModel):
    """The server's policies and this app's overrides."""

    policies: list[PolicyOut]
    overrides: list[OverrideOut]
