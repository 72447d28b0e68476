"""Plain-text formatting the way the ``ollama`` CLI prints: sizes, times, tables, stats.

Standard library only (``corral list`` must start fast).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "go_duration",
    "go_value",
    "human_bytes",
    "human_duration",
    "human_number",
    "human_time",
    "short_digest",
    "stats_lines",
    "table",
]


def human_bytes(size: int) -> str:
    """Decimal units like Ollama: ``98 MB``, ``2.0 GB`` is ``2 GB``, ``1.5 GB``."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_number(count: int) -> str:
    """Parameter counts like Ollama: ``8B``, ``7.6B``, ``134.52M``, ``500K``."""
    if count >= 10**9:
        value = count / 10**9
        return f"{value:.0f}B" if value == math.floor(value) else f"{value:.1f}B"
    if count >= 10**6:
        value = count / 10**6
        return f"{value:.0f}M" if value == math.floor(value) else f"{value:.2f}M"
    if count >= 10**3:
        return f"{count / 10**3:.0f}K"
    return str(count)


def human_duration(seconds: float) -> str:
    """``About a minute``, ``4 minutes``, ``2 hours``, ``3 weeks`` (Ollama's wording)."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (nanoseconds allowed); ``None`` for missing or Go's zero time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return None if parsed.year <= 1 else parsed


def human_time(value: str | None, zero: str, now: datetime | None = None) -> str:
    """``2 minutes ago`` / ``4 minutes from now``; ``Forever`` beyond 20 years ahead."""
    moment = parse_time(value)
    if moment is None:
        return zero
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    if int(int(delta / 3600) / 24 / 365) < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def short_digest(digest: str) -> str:
    """The ID column: the first 12 hex digits, without a ``sha256:`` prefix."""
    return digest.removeprefix("sha256:").removeprefix("sha256-")[:12]


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by four spaces (Ollama's tablewriter settings)."""
    all_rows = [list(header)] if header else []
    all_rows += [list(r) for r in rows]
    if not all_rows:
        return ""
    widths = [0] * max(len(r) for r in all_rows)
    for row in all_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["    ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in all_rows]
    return "\n".join(lines)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1.234567891s``, ``12.5ms``, ``2m3.5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)

    def frac(value: int, digits: int) -> str:
        whole, rest = divmod(value, 10**digits)
        tail = f"{rest:0{digits}d}".rstrip("0")
        return f"{whole}.{tail}" if tail else str(whole)

    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{frac(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{frac(ns, 6)}ms"
    minutes, sec_ns = divmod(ns, 60 * 1_000_000_000)
    hours, minutes = divmod(minutes, 60)
    text = frac(sec_ns, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits; exponent form from 1e+06 and below 1e-04."""
    if not math.isfinite(value):
        return {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, "NaN")
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # digits before the decimal point
    if not -4 <= point - 1 < 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        body = f"{mantissa}e{point - 1:+03d}"
    elif point <= 0:
        body = "0." + "0" * -point + text
    else:
        body = text.ljust(point, "0") if point >= len(text) else f"{text[:point]}.{text[point:]}"
    return ("-" if sign else "") + body


def go_value(value: Any) -> str:
    """A JSON value as Go's ``%v`` prints it once decoded (numbers are float64 there)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, list):
        return "[" + " ".join(map(go_value, value)) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def stats_lines(final: Mapping[str, Any]) -> list[str]:
    """What ``ollama run --verbose`` prints after an answer, from the final chunk."""

    def num(key: str) -> int:
        value = final.get(key) or 0
        return int(value) if isinstance(value, int | float) else 0

    def line(label: str, value: str) -> str:
        return f"{label + ':':<22}{value}"

    total, load = num("total_duration"), num("load_duration")
    p_count, p_ns = num("prompt_eval_count"), num("prompt_eval_duration")
    e_count, e_ns = num("eval_count"), num("eval_duration")
    lines = []
    if total > 0:
        lines.append(line("total duration", go_duration(total)))
    if load > 0:
        lines.append(line("load duration", go_duration(load)))
    if p_count > 0:
        lines.append(line("prompt eval count", f"{p_count} token(s)"))
    if p_ns > 0:
        lines.append(line("prompt eval duration", go_duration(p_ns)))
        lines.append(line("prompt eval rate", f"{p_count / (p_ns / 1e9):.2f} tokens/s"))
    if e_count > 0:
        lines.append(line("eval count", f"{e_count} token(s)"))
    if e_ns > 0:
        lines.append(line("eval duration", go_duration(e_ns)))
        lines.append(line("eval rate", f"{e_count / (e_ns / 1e9):.2f} tokens/s"))
    return lines
