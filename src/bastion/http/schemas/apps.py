"""App (tenant) schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bastion.http.schemas.common import ResponseModel


class AppOut(ResponseModel):
    """An app: one customer application, the tenant its users, channels and clients
    belong to."""

    id: str = Field(description="The app id, app_…")
    name: str
    status: Literal["active", "disabled"] = Field(
        description="A disabled app's clients get no tokens and its tokens are refused."
    )
    created_at: str
    disabled_at: str | None = Field(None, description="When it was disabled (only if it is).")
