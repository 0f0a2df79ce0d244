"""Revoke-before schemas."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from bastion.http.schemas.common import RequestModel, ResponseModel


class RevokeBefore(RequestModel):
    """Refuse every token issued before a time (default: now)."""

    issued_before: AwareDatetime | None = Field(
        None, description="RFC 3339 time; tokens issued earlier are refused. Default: now."
    )


class RevokeBeforeOut(ResponseModel):
    """The cutoff in force: tokens issued before ``issued_before`` are refused."""

    app_id: str
    user_id: str | None
    issued_before: str
