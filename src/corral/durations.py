"""Ollama-style durations for ``keep_alive``: seconds as a number, or "10m", "1h30m", "300ms".

A negative value means forever (``None``); zero means unload now.
"""

from __future__ import annotations

import re

from corral.errors import InvalidOption

__all__ = ["parse_keep_alive"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_keep_alive(value: float | int | str | None, default: float | None) -> float | None:
    """Return seconds to keep a model loaded, ``None`` for forever."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidOption(f"keep_alive must be a number of seconds or a duration, not {value}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_duration(text)
    return None if seconds < 0 else seconds


def _parse_duration(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise InvalidOption(
            f'invalid keep_alive "{text}": use seconds (300) or a duration like "5m", "1h30m", "-1"'
        )
    return sign * total
