"""Server-rendered pages of the login flow (Jinja2, autoescaped, no script, no style)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("bastion.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """Render a page; every value is HTML-escaped unless a template marks it safe."""
    return _environment().get_template(template).render(**context)
