"""Compile a Modelfile TEMPLATE (Go or Jinja) once, render prompts from native messages.

Go templates get Ollama's values and Ollama's two modes: a template that mentions
``.Messages`` renders once over the whole (collated) chat; an older one that only knows
``.System``/``.Prompt``/``.Response`` renders once per turn, and the last turn stops at the
first ``{{ .Response }}``. Jinja templates get what Hugging Face's ``apply_chat_template``
passes: ``messages``, ``tools``, ``add_generation_prompt``, ``bos_token``, ``eos_token``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn

import jinja2
from jinja2 import ChainableUndefined

from corral.templates import goparse
from corral.templates.errors import TemplateError, TemplateLimitError
from corral.templates.gocontext import HELPERS, collate, go_format, values
from corral.templates.gotojinja import cut_at_response, translate
from corral.templates.sandbox import DEFAULT_TIMEOUT, LimitedSandbox, guard_loops, render_limited

__all__ = ["ChatTemplate", "Syntax", "compile_template", "detect_syntax", "render_prompt"]

Syntax = Literal["go", "jinja"]
_RESPONSE = goparse.Field(("Response",))
Messages = Sequence[Mapping[str, Any]]

_JINJA_ONLY = re.compile(r"\{%|\{#")
_GO_MARKERS = re.compile(
    r"\{\{-?\s*(/\*|(end|if|range|with|else|break|continue|template|define|block)\b)"
    r"|\{\{[^{}]*?(?<![\w\])'\"])[.$]"  # a field or variable operand: {{ .X }}, {{ f $x }}
)


def detect_syntax(text: str) -> Syntax:
    """``jinja`` for statements or comments (``{% %}``, ``{# #}``), ``go`` for Go's markers
    (``{{ .X }}``, ``{{ $x }}``, ``{{ end }}``) or plain text; when both or neither show,
    whichever parses, Jinja first (``{{ bos_token }}``)."""
    jinja, go = _JINJA_ONLY.search(text), _GO_MARKERS.search(text)
    if jinja and not go:
        return "jinja"
    if (go and not jinja) or "{{" not in text:
        return "go"
    try:
        _jinja_env().parse(text)
    except jinja2.TemplateSyntaxError:
        return "go"
    return "jinja"


def _raise_exception(message: str) -> NoReturn:
    raise TemplateError(str(message))


def _tojson(value: Any, indent: int | None = None, **kwargs: Any) -> str:
    """Hugging Face's ``tojson``: no HTML escaping, non-ASCII kept."""
    separators = kwargs.get("separators")
    sort_keys = bool(kwargs.get("sort_keys", False))
    return json.dumps(
        value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys
    )


@functools.cache
def _go_env() -> LimitedSandbox:
    env = LimitedSandbox(
        keep_trailing_newline=True, finalize=go_format, undefined=ChainableUndefined
    )
    env.globals.update(HELPERS)
    return env


@functools.cache
def _jinja_env() -> LimitedSandbox:
    env = LimitedSandbox(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _compile(
    env: LimitedSandbox, source: str, constants: list[Any] | None = None
) -> jinja2.Template:
    try:
        tree = guard_loops(env.parse(source))
        return env.from_string(tree, globals={"_c": constants} if constants is not None else None)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "syntax error", exc.lineno) from None
    except SyntaxError as exc:  # Jinja's output Python rejects it, e.g. {% break %} outside a loop
        raise TemplateError(exc.msg or "syntax error") from None


def _run(template: jinja2.Template, context: dict[str, Any], timeout: float) -> str:
    try:
        return render_limited(lambda: template.generate(context), timeout)
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateLimitError("recursion too deep") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(exc.message or type(exc).__name__) from None
    except Exception as exc:  # a type error inside the template's own logic
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


@dataclass
class ChatTemplate:
    """A compiled template; build with :func:`compile_template` (cached)."""

    text: str
    syntax: Syntax
    _full: jinja2.Template
    _last_turn: jinja2.Template | None = None  # legacy Go templates: cut at .Response
    _tree: goparse.Tree | None = None
    fields: set[str] = field(default_factory=set)

    @property
    def uses_messages(self) -> bool:
        return self.syntax == "jinja" or "messages" in self.fields

    @property
    def supports_tools(self) -> bool:
        if self.syntax == "go":
            return "tools" in self.fields
        return re.search(r"\btools\b", self.text) is not None

    def tool_call_tag(self) -> str:
        """Text a model writes before its tool calls: Ollama's rule for Go templates (the
        first text inside ``{{ if .ToolCalls }}``, up to a ``{``); known markers for Jinja;
        ``{`` when calls are bare JSON."""
        if self._tree is None:
            for tag in ("<tool_call>", "[TOOL_CALLS]", "<|tool_call|>", "<|python_tag|>"):
                if tag in self.text:
                    return tag
            return "{"
        branch = _tool_calls_branch(self._tree.nodes)
        text = (
            next((n.value for n in branch.body if isinstance(n, goparse.Text)), "")
            if branch
            else ""
        )
        tag = text.replace("\r\n", "\n").split("{", 1)[0].strip()
        return tag or "{"

    def render(
        self,
        messages: Messages,
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        system: str | None = None,
        think: bool | str | None = None,
        bos_token: str = "",
        eos_token: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """The prompt for ``messages`` (native dicts: role, content, tool_calls, tool_name).
        ``system`` is put first unless the messages open with their own system message."""
        chat = [dict(m) for m in messages]
        if system and not (chat and chat[0].get("role") == "system"):
            chat.insert(0, {"role": "system", "content": system})
        if self.syntax == "jinja":
            context: dict[str, Any] = {
                "messages": [_hf_message(m) for m in chat],
                "tools": list(tools) if tools else None,
                "add_generation_prompt": True,
                "bos_token": bos_token,
                "eos_token": eos_token,
            }
            if think is not None:
                context["enable_thinking"] = bool(think)
            return _run(self._full, context, timeout)
        system_text, collated = collate(chat)
        if self.uses_messages:
            root = values(collated, tools, system=system_text, think=think)
            return _run(self._full, {"_root": root}, timeout)
        return self._render_turns(collated, think, timeout)

    def _render_turns(self, chat: list[dict[str, Any]], think: Any, timeout: float) -> str:
        out: list[str] = []
        turn = {"system": "", "prompt": "", "response": ""}

        def flush(template: jinja2.Template) -> None:
            root = values([], None, think=think, **turn)
            out.append(_run(template, {"_root": root}, timeout))
            turn.update(system="", prompt="", response="")

        for message in chat:
            role, content = message.get("role"), message.get("content") or ""
            if role == "system":
                if turn["prompt"] or turn["response"]:
                    flush(self._full)
                turn["system"] = content
            elif role == "user":
                if turn["response"]:
                    flush(self._full)
                turn["prompt"] = content
            elif role == "assistant":
                turn["response"] = content
        assert self._last_turn is not None
        flush(self._last_turn)
        return "".join(out)


def _mentions(pipe: goparse.Pipe, name: str) -> bool:
    return any(
        isinstance(arg, goparse.Field) and name in arg.names
        for cmd in pipe.cmds
        for arg in cmd.args
    )


def _tool_calls_branch(nodes: list[goparse.Node]) -> goparse.Branch | None:
    for node in nodes:
        if not isinstance(node, goparse.Branch):
            continue
        if node.kind == "if" and _mentions(node.pipe, "ToolCalls"):
            return node
        for part in (node.body, node.orelse or []):
            found = _tool_calls_branch(part)
            if found:
                return found
    return None


def _hf_message(m: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.get("role", ""), "content": m.get("content") or ""}
    calls = []
    for call in m.get("tool_calls") or []:
        function = dict(call.get("function") or {})
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            with contextlib.suppress(ValueError):
                function["arguments"] = json.loads(arguments)
        calls.append({"type": "function", "function": function})
    if calls:
        out["tool_calls"] = calls
    name = m.get("tool_name") or m.get("name")
    if name:
        out["name"] = out["tool_name"] = name
    for key in ("tool_call_id", "thinking"):
        if m.get(key):
            out[key] = m[key]
    if m.get("thinking"):
        out["reasoning_content"] = m["thinking"]
    return out


@functools.lru_cache(maxsize=64)
def compile_template(text: str) -> ChatTemplate:
    """Detect the syntax, translate Go templates, compile in the sandbox (cached by text)."""
    syntax = detect_syntax(text)
    if syntax == "jinja":
        return ChatTemplate(text, syntax, _compile(_jinja_env(), text))
    tree = goparse.parse(text)
    if not tree.fields & {"messages", "response"}:  # Ollama appends {{ .Response }} then
        tree.nodes.append(goparse.Action(goparse.Pipe([goparse.Command([_RESPONSE], 0)], 0)))
    full = translate(tree.nodes)
    template = ChatTemplate(text, syntax, _compile(_go_env(), full.source, full.constants))
    template._tree, template.fields = tree, tree.fields
    if not template.uses_messages:
        cut = translate(cut_at_response(tree.nodes))
        template._last_turn = _compile(_go_env(), cut.source, cut.constants)
    return template


def render_prompt(
    template: str,
    messages: Messages,
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    system: str | None = None,
    **kwargs: Any,
) -> str:
    """Shortcut: ``compile_template(template).render(...)``."""
    return compile_template(template).render(messages, tools, system=system, **kwargs)
