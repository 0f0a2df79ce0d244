"""Message Markdown rendered to HTML that is safe to insert into a page.

Clients get the raw text and this HTML side by side. The text is parsed as CommonMark
with raw HTML turned off (a ``<script>`` in a message is text, shown as text), images
off (no tracking pixels), and the result passes the ``nh3`` allow-list sanitiser
anyway: only the tags and attributes below survive, links may only be http, https or
mailto, and every link gets ``rel="noopener noreferrer nofollow"``. Client-supplied
HTML is never trusted.
"""

from __future__ import annotations

import re
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


# Plain prose: one line that starts with a letter and holds only letters, digits, spaces
# and . , ? ! ' " (ending in no space). CommonMark makes it one paragraph of itself and
# the sanitiser keeps that as it is; most chat messages are this, and parsing them cost
# more than the rest of their rendering. A property test holds this to the full path.
_PROSE = re.compile(r"[^\W\d_](?:[^\W_]|[ ,.?!'\"])*(?<! )")


def render_markdown(text: str) -> str:
    """The sanitised HTML of a message's Markdown text."""
    if _PROSE.fullmatch(text):
        return f"<p>{text}</p>\n"
    return _rendered(text)


@lru_cache(maxsize=4096)
def _rendered(text: str) -> str:
    """Markdown parsed and rendered, then sanitised."""
    html = _markdown.render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
