"""Message Markdown rendered to HTML that is safe to insert into a page.

Clients get the raw text and this HTML side by side. The text is parsed as CommonMark
with raw HTML turned off (a ``<script>`` in a message is text, shown as text), images
off (no tracking pixels), and the result passes the ``nh3`` allow-list sanitiser
anyway: only the tags and attributes below survive, links may only be http, https or
mailto, and every link gets ``rel="noopener noreferrer nofollow"``. Client-supplied
HTML is never trusted.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "strong", "em", "del", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """The sanitised HTML of a message's Markdown text."""
    html = _markdown.render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
