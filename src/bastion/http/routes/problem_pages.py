"""Human-readable pages for each problem ``type`` URI (public)."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from bastion.core.errors import PROBLEM_TYPES, NotFound
from bastion.http.problems import describe

router = APIRouter(tags=["problems"], include_in_schema=False)
_BY_SLUG = {error.type: error for error in PROBLEM_TYPES}


@router.get("/problems/{slug}")
async def problem_page(slug: str) -> HTMLResponse:
    """Explain one problem type."""
    error = _BY_SLUG.get(slug)
    if error is None:
        raise NotFound("No such problem type.")
    info = describe(error)
    page = (
        "<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<h1>{title} ({status})</h1><p>{description}</p>"
    ).format(**{k: html.escape(str(v)) for k, v in info.items()})
    return HTMLResponse(page)
