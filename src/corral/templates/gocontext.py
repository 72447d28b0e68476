"""Values for translated Go templates, shaped and printed the way Ollama's Go code does.

Messages, tools and tool calls become :class:`GoStruct` (a dict keyed by Go field names, so
``.Function.Name`` works as a lookup), maps become :class:`GoMap`, slices :class:`GoList`.
Printing follows Go: booleans are ``true``/``false``, values whose Go type has a ``String``
method (tools, tool functions, tool-call arguments) print as compact JSON with Go's HTML
escaping, plain slices as ``[a b c]``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

from corral.templates.errors import TemplateError

__all__ = [
    "HELPERS",
    "GoList",
    "GoMap",
    "GoStruct",
    "collate",
    "go_format",
    "go_json",
    "values",
]


class GoStruct(dict[str, Any]):
    """A struct value; ``json_value`` is what Go's ``String``/``json`` would marshal."""

    __slots__ = ("json_value",)

    def __init__(self, fields: Mapping[str, Any], json_value: Any = None) -> None:
        super().__init__(fields)
        self.json_value = json_value

    def __bool__(self) -> bool:  # a struct is never "empty" in Go
        return True


class GoMap(dict[str, Any]):
    """A Go map: ranged and marshalled in sorted key order."""


class GoList(list[Any]):
    """A Go slice; ``as_json`` when its Go type prints itself as JSON (``api.Tools``)."""

    def __init__(self, items: Iterable[Any] = (), as_json: bool = False) -> None:
        super().__init__(items)
        self.as_json = as_json


class GoSlice(Sequence[Any]):
    """``slice x i j`` of a list as a view, as Go's slices share their array: library
    templates compute ``len (slice $.Messages $i)`` for every message, which copying
    would make quadratic in the length of the chat."""

    __slots__ = ("as_json", "items", "start", "stop")
    items: Sequence[Any]
    start: int
    stop: int
    as_json: bool

    def __init__(self, items: Sequence[Any], start: int, stop: int, as_json: bool) -> None:
        if isinstance(items, GoSlice):  # a slice of a slice views the same list
            start, stop = items.start + start, items.start + stop
            items = items.items
        self.items, self.start, self.stop, self.as_json = items, start, stop, as_json

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self.items, self.start, self.stop)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.items[self.start + index % len(self)]


_LISTS = (list, tuple, GoSlice)


def _jsonable(value: Any) -> Any:
    if isinstance(value, GoStruct):
        return _jsonable(value.json_value) if value.json_value is not None else None
    if isinstance(value, Mapping):
        items = sorted(value.items()) if isinstance(value, GoMap) else value.items()
        return {str(k): _jsonable(v) for k, v in items}
    if isinstance(value, _LISTS):
        return [_jsonable(v) for v in value]
    if isinstance(value, Undefined):
        return None
    return value


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, HTML characters escaped."""
    text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_float(value: float) -> str:
    text = repr(value)
    if "e" in text and -4 <= int(text.split("e")[1]) < 21:  # Go's %v switches at 1e21
        text = format(Decimal(text), "f")
    return text


def go_format(value: Any) -> str:
    """How Go's template engine prints a value (the Jinja environment's ``finalize``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, GoStruct | GoMap) or (
        isinstance(value, GoList | GoSlice) and value.as_json
    ):
        return go_json(value)
    if isinstance(value, _LISTS):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


# -- functions ---------------------------------------------------------------------------


def go_range(value: Any) -> list[tuple[Any, Any]]:
    if value is None or isinstance(value, Undefined):
        return []
    if isinstance(value, Mapping):
        return sorted(value.items())
    if isinstance(value, _LISTS):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    raise TemplateError(f"range can't iterate over {go_format(value)[:40]!r}")


def go_len(value: Any) -> int:
    if value is None or isinstance(value, Undefined):
        return 0
    if isinstance(value, str):
        return len(value.encode())  # Go counts bytes
    if isinstance(value, Sequence | Mapping):
        return len(value)
    raise TemplateError(f"len of {type(value).__name__}")


def go_slice(value: Any, *indexes: Any) -> Any:
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in indexes):
        raise TemplateError("slice indexes must be integers")
    if not isinstance(value, (str, *_LISTS)):
        raise TemplateError(f"can't slice item of type {type(value).__name__}")
    start = indexes[0] if indexes else 0
    stop = indexes[1] if len(indexes) > 1 else len(value)
    if not 0 <= start <= stop <= len(value):
        raise TemplateError(f"slice index out of range: [{start}:{stop}] of {len(value)}")
    if isinstance(value, str):
        return value[start:stop]
    return GoSlice(value, start, stop, getattr(value, "as_json", False))


def go_index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, (str, *_LISTS)) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise TemplateError(f"index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


def go_eq(first: Any, *others: Any) -> bool:
    return any(first == other for other in others)


def go_print(*args: Any) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_format(arg)
    return out


def go_println(*args: Any) -> str:
    return " ".join(go_format(a) for a in args) + "\n"


def go_current_date(*_: Any) -> str:
    return time.strftime("%Y-%m-%d")


def go_yesterday_date(*_: Any) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))


HELPERS: dict[str, Any] = {
    "go_range": go_range,
    "go_len": go_len,
    "go_slice": go_slice,
    "go_index": go_index,
    "go_eq": go_eq,
    "go_json": go_json,
    "go_print": go_print,
    "go_println": go_println,
    "go_current_date": go_current_date,
    "go_yesterday_date": go_yesterday_date,
}

# -- building the values -----------------------------------------------------------------


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return GoMap({str(k): _wrap(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return GoList(_wrap(v) for v in value)
    return value


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # OpenAI-style JSON text
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, Mapping) else {}


def _tool_call(call: Mapping[str, Any], index: int) -> GoStruct:
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    arguments = _wrap(_arguments(function.get("arguments")))
    fn_json = {"index": index, "name": name, "arguments": arguments}
    fields = {"Index": index, "Name": name, "Arguments": arguments}
    call_json = {"id": call["id"], "function": fn_json} if call.get("id") else {"function": fn_json}
    return GoStruct({"ID": call.get("id") or "", "Function": GoStruct(fields, fn_json)}, call_json)


def _message(m: Mapping[str, Any]) -> GoStruct:
    calls = [_tool_call(c, i) for i, c in enumerate(m.get("tool_calls") or [])]
    fields = {
        "Role": m.get("role") or "",
        "Content": m.get("content") or "",
        "Thinking": m.get("thinking") or "",
        "Images": GoList(m.get("images") or []),
        "ToolCalls": GoList(calls, as_json=True),
        "ToolName": m.get("tool_name") or m.get("name") or "",
        "ToolCallID": m.get("tool_call_id") or "",
    }
    return GoStruct(fields, {k: v for k, v in m.items() if v not in (None, "", [])})


def _ordered(value: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Go marshals struct fields in declaration order, omitting empty ``omitempty`` ones;
    fields Go's struct lacks are kept after them."""
    out = {k: value[k] for k in keys if value.get(k) not in (None, "", [], {})}
    out.update((k, v) for k, v in value.items() if k not in out and k not in keys)
    return out


def _property(prop: Any) -> Any:
    if not isinstance(prop, Mapping):
        return prop
    return _ordered(prop, ("anyOf", "type", "items", "description", "enum"))


def _tool(tool: Mapping[str, Any]) -> GoStruct:
    function = tool.get("function") or {}
    params = function.get("parameters") or {}
    properties = params.get("properties") or {}
    params_json = _ordered(params, ("type", "$defs", "items", "required", "properties"))
    params_json["type"] = params.get("type", "object")
    params_json["properties"] = GoMap({k: _property(v) for k, v in properties.items()})
    # Ollama's templateToolFunction and templateTool: exactly these fields.
    fn_json = {
        "name": function.get("name", ""),
        "description": function.get("description", ""),
        "parameters": params_json,
    }
    tool_json = {"type": tool.get("type", "function"), "items": tool.get("items")}
    tool_json = {k: v for k, v in tool_json.items() if v is not None} | {"function": fn_json}
    params_fields = {
        "Type": params.get("type", ""),
        "Defs": _wrap(params.get("$defs")),
        "Items": _wrap(params.get("items")),
        "Required": GoList(params.get("required") or []),
        "Properties": _wrap(properties),
    }
    fn_fields = {
        "Name": function.get("name", ""),
        "Description": function.get("description", ""),
        "Parameters": GoStruct(params_fields, params_json),
    }
    fields = {
        "Type": tool.get("type", "function"),
        "Items": _wrap(tool.get("items")),
        "Function": GoStruct(fn_fields, fn_json),
    }
    return GoStruct(fields, tool_json)


def collate(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Ollama's ``collate``: all system texts joined, consecutive same-role messages merged
    (except tool results, which keep their own identity)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            system.append(message.get("content") or "")
        if out and out[-1].get("role") == role and role != "tool":
            out[-1]["content"] = (
                (out[-1].get("content") or "") + "\n\n" + (message.get("content") or "")
            )
        else:
            out.append(dict(message))
    return "\n\n".join(system), out


def values(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    system: str = "",
    prompt: str = "",
    response: str = "",
    think: bool | str | None = None,
) -> GoStruct:
    """Ollama's template values: ``.System``, ``.Messages``, ``.Tools``, ``.Prompt`` ..."""
    fields = {
        "System": system,
        "Prompt": prompt,
        "Response": response,
        "Suffix": "",
        "Messages": GoList([_message(m) for m in messages], as_json=True),
        "Tools": GoList([_tool(t) for t in tools or []], as_json=True),
        "Think": bool(think),
        "ThinkLevel": think if isinstance(think, str) else "",
        "IsThinkSet": think is not None,
    }
    return GoStruct(fields, None)
