"""Tool calls in generated text, for models whose template corral renders itself.

Models write calls as JSON, ``{"name": ..., "arguments": {...}}`` (or ``"parameters"``), one
object or a list, after a tag the chat template reveals (``<tool_call>``, ``[TOOL_CALLS]``)
or at the very start of the answer when there is none (llama 3, optionally after
``<|python_tag|>``). The rules that keep prose from being taken for a call, as in Ollama:

- with no tag, only an answer that *starts* with JSON can hold calls;
- a call's name must be one of the request's tools (or, when no names are known, the object
  must have an ``arguments``/``parameters`` member);
- anything that does not parse leaves the text untouched, as content.

Arguments always come back as a dict (a JSON string of an object is decoded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from corral.templates import TemplateError, compile_template
from corral.types import ToolCall, ToolCallFunction

__all__ = ["ParsedOutput", "ToolCallFormat", "ToolCallStream", "parse_tool_calls"]

PYTHON_TAG = "<|python_tag|>"
_DECODER = json.JSONDecoder()
_SEPARATORS = " \t\r\n,;]"


@dataclass(frozen=True)
class ToolCallFormat:
    """``tag`` opens the calls (``{`` means bare JSON at the start); ``end_tag`` may close
    each group (``</tool_call>``)."""

    tag: str = "{"
    end_tag: str | None = None

    @property
    def bare(self) -> bool:
        return self.tag in ("{", "[")

    @classmethod
    def for_template(cls, template: str | None) -> ToolCallFormat:
        """The format a model's TEMPLATE implies (Ollama's ``parseTag``); bare JSON when the
        template is missing or does not compile."""
        if not template:
            return cls()
        try:
            tag = compile_template(template).tool_call_tag()
        except TemplateError:
            return cls()
        tag = tag.rstrip(" \t\n[").strip() or "{"  # "[TOOL_CALLS] [" -> "[TOOL_CALLS]"
        match = re.fullmatch(r"<([A-Za-z_][\w-]*)>", tag)
        return cls(tag, f"</{match.group(1)}>" if match else None)


@dataclass
class ParsedOutput:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)


def _arguments(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _call(obj: Any, names: Collection[str] | None) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict) and "name" in obj["function"]:
        obj = obj["function"]  # the OpenAI shape: {"type": "function", "function": {...}}
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    key = "arguments" if "arguments" in obj else "parameters" if "parameters" in obj else None
    if names is not None and name not in names:
        return None
    if names is None and key is None:
        return None
    arguments = _arguments(obj.get(key) if key else None)
    if arguments is None:
        return None
    return ToolCall(function=ToolCallFunction(name=name, arguments=arguments))


def _calls_in(value: Any, names: Collection[str] | None) -> list[ToolCall] | None:
    """All calls in one JSON value, or None if any part of it is not a call."""
    items = value if isinstance(value, list) else [value]
    calls = [_call(item, names) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _json_calls(
    text: str, pos: int, names: Collection[str] | None, end_tag: str | None
) -> tuple[list[ToolCall], int]:
    """Consecutive JSON calls from ``pos``; returns them and where parsing stopped."""
    calls: list[ToolCall] = []
    while True:
        start = pos
        while start < len(text) and text[start] in _SEPARATORS:
            start += 1
        if end_tag and text.startswith(end_tag, start):
            return calls, start + len(end_tag)
        if start >= len(text) or text[start] not in "{[":
            return calls, pos
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            return calls, pos
        found = _calls_in(value, names)
        if found is None:
            return calls, pos
        calls.extend(found)
        pos = end


def parse_tool_calls(
    text: str,
    fmt: ToolCallFormat | None = None,
    tool_names: Collection[str] | None = None,
) -> ParsedOutput:
    """Split a finished answer into content and tool calls (none if nothing qualifies)."""
    fmt = fmt or ToolCallFormat()
    if fmt.bare:
        body = text.lstrip()
        body = body.removeprefix(PYTHON_TAG).lstrip()
        if not body.startswith(("{", "[")):
            return ParsedOutput(text)
        offset = len(text) - len(body)
        found, stop = _json_calls(text, offset, tool_names, fmt.end_tag)
        if not found:
            return ParsedOutput(text)
        return ParsedOutput(text[stop:].strip(), found)
    first = text.find(fmt.tag)
    if first < 0:
        return ParsedOutput(text)
    calls: list[ToolCall] = []
    pos = first
    while True:
        tagged = pos
        while tagged < len(text) and text[tagged].isspace():
            tagged += 1
        if not text.startswith(fmt.tag, tagged):
            break
        found, stop = _json_calls(text, tagged + len(fmt.tag), tool_names, fmt.end_tag)
        if not found:
            break
        calls.extend(found)
        pos = stop
    if not calls:
        return ParsedOutput(text)
    return ParsedOutput((text[:first] + text[pos:]).strip(), calls)


class ToolCallStream:
    """Streaming front end of :func:`parse_tool_calls`: :meth:`feed` returns the content that
    can be shown at once; text that may be a call is held until :meth:`finish`."""

    def __init__(
        self, fmt: ToolCallFormat | None = None, tool_names: Collection[str] | None = None
    ):
        self.fmt = fmt or ToolCallFormat()
        self.names = tool_names
        self.held = ""
        self.shown = ""  # content already returned by feed
        self.state = "start"  # start -> prose | calls

    def feed(self, chunk: str) -> str:
        self.held += chunk
        if self.state == "calls":
            return ""
        if self.fmt.bare:
            if self.state == "prose":
                return self._release(len(self.held))
            head = self.held.lstrip()
            if not head or (len(head) < len(PYTHON_TAG) and PYTHON_TAG.startswith(head)):
                return ""  # not enough text to decide yet
            if head.startswith((PYTHON_TAG, "{", "[")):
                self.state = "calls"
                return ""
            self.state = "prose"
            return self._release(len(self.held))
        index = self.held.find(self.fmt.tag)
        if index >= 0:
            self.state = "calls"
            return self._release(index)
        keep = next(
            (
                n
                for n in range(len(self.fmt.tag) - 1, 0, -1)
                if self.held.endswith(self.fmt.tag[:n])
            ),
            0,
        )
        return self._release(len(self.held) - keep)

    def _release(self, upto: int) -> str:
        out, self.held = self.held[:upto], self.held[upto:]
        self.shown += out
        return out

    def finish(self) -> ParsedOutput:
        """The rest of the content and the calls; call once, at the end of generation."""
        if self.state != "calls":
            return ParsedOutput(self._release(len(self.held)))
        parsed = parse_tool_calls(self.held, self.fmt, self.names)
        return ParsedOutput(parsed.content if parsed.tool_calls else self.held, parsed.tool_calls)
