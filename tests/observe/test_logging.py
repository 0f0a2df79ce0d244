"""Log lines escape what could forge an entry or reorder what an operator reads."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from bastion.observe.logging import configure, escape_values


@pytest.mark.parametrize("json_output", [True, False])
def test_crlf_and_bidi_in_values_are_escaped(json_output: bool) -> None:
    """A value with CR/LF and a bidi override stays on one line, written as escapes."""
    out = io.StringIO()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=out),
        processors=[escape_values, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    evil = 'x\r\n{"level": "error", "event": "forged"}\u202egnp.exe'
    logger.info("request", agent=evil, nested={"k": [evil], evil: "key"})
    text = out.getvalue()
    lines = text.strip("\n").split("\n")
    assert len(lines) == 1
    assert "\r" not in text
    assert "\u202e" not in text
    if json_output:
        entry = json.loads(lines[0])
        assert entry["agent"].startswith("x\\r\\n")
        assert "\\u202e" in entry["agent"]
        assert entry["nested"]["k"][0] == entry["agent"]
        assert entry["agent"] in entry["nested"]


def test_the_configured_json_lines_show_any_value(capsys: pytest.CaptureFixture[str]) -> None:
    """Bastion's JSON renderer writes values JSON has no type for as their ``repr`` (or
    ``__structlog__()``), and clean values as they are."""

    class Shown:
        def __structlog__(self) -> str:
            return "shown"

    saved = structlog.get_config()
    try:
        configure("info", json_output=True)
        structlog.get_logger("test").info(
            "values", odd={1, 2}, shown=Shown(), clean={"route": "/v1/x", "n": [1, 2.5, None]}
        )
    finally:
        structlog.configure(**saved)
    entry = json.loads(capsys.readouterr().err)
    assert entry["odd"] == "{1, 2}"
    assert entry["shown"] == "shown"
    assert entry["clean"] == {"route": "/v1/x", "n": [1, 2.5, None]}
