"""Message Markdown becomes HTML that carries no script, whatever the input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.security import markup
from bastion.security.markup import ALLOWED_TAGS, render_markdown

TAG = re.compile(r"<\s*/?\s*([a-zA-Z0-9]+)([^>]*)>")


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold** and _em_", "<p><strong>bold</strong> and <em>em</em></p>\n"),
        ("`a < b`", "<p><code>a &lt; b</code></p>\n"),
        (
            "[docs](https://example.com/x)",
            '<p><a href="https://example.com/x" rel="noopener noreferrer nofollow">docs</a></p>\n',
        ),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"),
    ],
)
def test_markdown_renders_to_allowed_html(text: str, html: str) -> None:
    """Common Markdown renders; raw HTML in a message is shown as text."""
    assert render_markdown(text) == html


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "<img src=x onerror=alert(1)>",
        "<a href='javascript:alert(1)'>x</a>",
        "![x](javascript:alert(1))",
        '<svg onload="alert(1)">',
        "<iframe src=//evil>",
        '[x](https://ok.example/" onmouseover="alert(1))',
        "<style>*{}</style>",
        "<!-- comment --><b>x</b>",
    ],
)
def test_no_script_survives(text: str) -> None:
    """Script URLs, event handlers and dangerous tags never appear in the HTML's markup.

    (The words may remain as visible text, escaped, which is harmless.)
    """
    html = render_markdown(text)
    for name, attrs in TAG.findall(html):
        assert name.lower() in ALLOWED_TAGS
        for value in re.findall(r'href="([^"]*)"', attrs):
            assert value.split(":", 1)[0].lower() in {"http", "https", "mailto"}
        assert not re.search(r"\bon\w+\s*=", attrs, re.IGNORECASE)
        assert "src=" not in attrs


@given(st.text(max_size=300))
def test_any_text_renders_to_allow_listed_tags_only(text: str) -> None:
    """Whatever the text, every tag in the output is allow-listed and has no handler."""
    html = render_markdown(text)
    for name, attrs in TAG.findall(html):
        assert name.lower() in ALLOWED_TAGS
        assert not re.search(r"\bon\w+\s*=", attrs, re.IGNORECASE)
        assert "javascript:" not in attrs.lower()


@given(
    st.lists(
        st.sampled_from(["<", ">", "[", "](", ")", "javascript:", "`", "*", "\n", "x", '"', "'"]),
        max_size=40,
    )
)
def test_markdown_punctuation_soup_is_safe(parts: list[str]) -> None:
    """Random mixes of Markdown and HTML punctuation never produce a live link or tag."""
    html = render_markdown("".join(parts))
    assert 'href="javascript' not in html.lower()
    for name, _attrs in TAG.findall(html):
        assert name.lower() in ALLOWED_TAGS


# Text the plain-prose path takes, and text just outside it, with the characters that
# matter to Markdown and to HTML near its edges.
_PROSE_LIKE = st.text(
    alphabet=st.sampled_from(list("aZé文1 ,.?!'\"-*_#>`&<[]()\t\n\u00a0\u0301")), max_size=40
)


@given(st.one_of(st.from_regex(markup._PROSE, fullmatch=True), _PROSE_LIKE))
def test_plain_prose_renders_as_the_full_path_renders_it(text: str) -> None:
    """Whatever the plain-prose shortcut answers is exactly what parsing and sanitising
    the same text gives."""
    assert render_markdown(text) == markup._rendered(text)


@pytest.mark.parametrize(
    "text",
    ["1. one", "# title", "a  ", " a", "a_b_", "x\ny", "a * b", "a&amp;b", "say <b>", "a\u00a0b"],
)
def test_markdown_syntax_is_never_taken_for_plain_prose(text: str) -> None:
    """Lists, headings, emphasis, entities, markup, edges with spaces and line breaks go
    through the parser."""
    assert markup._PROSE.fullmatch(text) is None
