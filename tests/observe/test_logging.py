"""Log lines escape what could forge an entry or reorder what an operator reads."""

from __future__ import annotations

import json

import pytest

from bastion.observe.logging import configure, get_logger


@pytest.mark.parametrize("json_output", [True, False])
def test_crlf_and_bidi_in_values_are_escaped(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    """A value with CR/LF and a bidi override stays on one line, written as escapes."""
    configure("info", json_output=json_output)
    try:
        evil = 'x\r\n{"level": "error", "event": "forged"}\u202egnp.exe'
        get_logger("test").info("request", agent=evil, nested={"k": [evil]})
        err = capsys.readouterr().err
    finally:
        configure("warning", json_output=True)  # as the test servers configure it
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1
    assert "\r" not in err
    assert "\u202e" not in err
    if json_output:
        entry = json.loads(lines[0])
        assert entry["agent"].startswith("x\\r\\n")
        assert "\\u202e" in entry["agent"]
