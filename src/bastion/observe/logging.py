"""Structured JSON logs through structlog, configured once at start-up."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import structlog

from bastion.core.text import escape_for_log

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def escape_values(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Escape CR, LF, other controls and bidi characters in every string value.

    Input that reaches a log line (a header, a name) can then neither start a forged
    entry nor reorder what an operator reads, whichever renderer is configured.
    """
    for key, value in event.items():
        if not _clean(value):
            event[key] = _escaped(value)
    return event


_PLAIN = frozenset({int, float, bool})


def _clean(value: object) -> bool:
    """Whether ``value`` holds nothing to escape (most of a line's values): then it is
    logged as it is, not rebuilt."""
    if value is None or type(value) in _PLAIN:
        return True
    if isinstance(value, str):
        return value.isprintable()
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_clean(v) for v in value)
    return True


def _escaped(value: object) -> object:
    if isinstance(value, str):
        return escape_for_log(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value


def _unencodable(value: object) -> object:
    """What a log line shows for a value JSON cannot hold: its ``__structlog__()`` form
    or its ``repr`` (as structlog's own renderer does)."""
    try:
        shown: object = value.__structlog__()  # type: ignore[attr-defined]
    except AttributeError:
        return repr(value)
    return shown


# One encoder for every line: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=_unencodable)


def _serialize(event: structlog.typing.EventDict, **_options: Any) -> str:
    return _ENCODER.encode(event)


def configure(level: str, *, json_output: bool) -> None:
    """Send one JSON object per line (or readable lines in development) to stderr."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_serialize)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            escape_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """Return a logger bound to a component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
