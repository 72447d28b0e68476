"""Translate a parsed Go template into Jinja source for the sandbox.

Every Go construct maps onto one Jinja construct: actions to ``{{ }}`` (values printed the way
Go prints them, by the environment's ``finalize``), ``if``/``with`` to ``{% if %}``, ``range``
to ``{% for %}`` over ``go_range(...)`` (index/key and element pairs), variables to slots of
one namespace ``_v``, functions to helpers from :mod:`corral.templates.gocontext`. Literals
and text with braces travel as constants (``_c[i]``), so no escaping is ever needed.

Field names are checked against the shape of Ollama's template values where the type of
``.`` is known (the root, a message in ``range .Messages``, a tool ...), so a typo such as
``.Contents`` fails when the model is created, not at the first chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.templates.errors import TemplateError, UnsupportedTemplate
from corral.templates.goparse import (
    Action,
    Arg,
    Branch,
    Chain,
    Command,
    Dot,
    Field,
    Func,
    Literal,
    LoopControl,
    Node,
    Pipe,
    SubPipe,
    Text,
    Variable,
)

__all__ = ["SCHEMA", "Translation", "cut_at_response", "translate"]

# The shape of Ollama's template values (template.Values and api.Message/Tool...).
SCHEMA: dict[str, dict[str, str]] = {
    "Values": {
        "System": "string",
        "Prompt": "string",
        "Response": "string",
        "Suffix": "string",
        "Messages": "[]Message",
        "Tools": "[]Tool",
        "Think": "bool",
        "ThinkLevel": "string",
        "IsThinkSet": "bool",
    },
    "Message": {
        "Role": "string",
        "Content": "string",
        "Thinking": "string",
        "Images": "[]string",
        "ToolCalls": "[]ToolCall",
        "ToolName": "string",
        "ToolCallID": "string",
    },
    "ToolCall": {"ID": "string", "Function": "ToolCallFunction"},
    "ToolCallFunction": {"Index": "int", "Name": "string", "Arguments": "map"},
    "Tool": {"Type": "string", "Items": "any", "Function": "ToolFunction"},
    "ToolFunction": {"Name": "string", "Description": "string", "Parameters": "Parameters"},
    "Parameters": {
        "Type": "string",
        "Defs": "any",
        "Items": "any",
        "Required": "[]string",
        "Properties": "map",
    },
}
_SCALARS = {"string", "int", "bool"}

# Go function -> (minimum, maximum arguments; None = any), result type.
_FUNCS: dict[str, tuple[int, int | None]] = {
    "and": (1, None),
    "or": (1, None),
    "not": (1, 1),
    "eq": (2, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "len": (1, 1),
    "slice": (1, 4),
    "index": (1, None),
    "json": (1, 1),
    "print": (0, None),
    "println": (0, None),
    "currentDate": (0, None),
    "yesterdayDate": (0, None),
}
_UNSUPPORTED_FUNCS = {
    "printf": "use print, or write the text out",
    "html": "HTML escaping is not needed in a prompt",
    "js": "JavaScript escaping is not needed in a prompt",
    "urlquery": "URL escaping is not needed in a prompt",
    "call": "there are no function values in a prompt context",
    "toTypeScriptType": "tool definitions are only available as JSON",
}
_COMPARE = {"ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass
class Translation:
    source: str  # Jinja source
    constants: list[Any]  # ``_c`` in the source


@dataclass
class _Scope:
    dot: str  # Jinja expression for ``.``
    dot_type: str
    var_types: dict[str, str] = field(default_factory=dict)


class _Translator:
    def __init__(self) -> None:
        self.constants: list[Any] = []
        self.out: list[str] = []
        self.depth = 0
        self.types: dict[str, str] = {}  # slot -> Go type, when known

    def const(self, value: Any) -> str:
        self.constants.append(value)
        return f"_c[{len(self.constants) - 1}]"

    # -- types --------------------------------------------------------------------------

    def field_type(self, base: str, name: str, line: int) -> str:
        if base in SCHEMA:
            found = SCHEMA[base].get(name)
            if found is None:
                known = ", ".join(SCHEMA[base])
                raise TemplateError(
                    f"can't evaluate field {name} in type {base} (fields: {known})", line
                )
            return found
        if base in _SCALARS or base.startswith("[]"):
            raise TemplateError(f"can't evaluate field {name} in type {base}", line)
        return "any"

    def access(self, code: str, gotype: str, names: tuple[str, ...], line: int) -> tuple[str, str]:
        for name in names:
            gotype = self.field_type(gotype, name, line)
            code = f"{code}[{name!r}]"
        return code, gotype

    # -- expressions --------------------------------------------------------------------

    def arg(self, arg: Arg, scope: _Scope, line: int) -> tuple[str, str]:
        if isinstance(arg, Dot):
            return scope.dot, scope.dot_type
        if isinstance(arg, Field):
            return self.access(scope.dot, scope.dot_type, arg.names, line)
        if isinstance(arg, Variable):
            base = ("_root", "Values") if arg.slot is None else (f"_v.{arg.slot}", "any")
            if arg.slot is not None:
                base = (base[0], self.types.get(arg.slot, "any"))
            return self.access(base[0], base[1], arg.names, line)
        if isinstance(arg, Literal):
            value = arg.value
            kind = {bool: "bool", int: "int", str: "string"}.get(type(value), "any")
            return self.const(value), kind
        if isinstance(arg, Func):
            return self.call(arg.name, [], line)
        if isinstance(arg, SubPipe):
            code, gotype = self.pipe(arg.pipe, scope)
            return f"({code})", gotype
        if isinstance(arg, Chain):
            code, gotype = self.pipe(arg.node.pipe, scope)
            return self.access(f"({code})", gotype, arg.names, line)
        raise UnsupportedTemplate(type(arg).__name__, line)  # pragma: no cover

    def call(self, name: str, args: list[tuple[str, str]], line: int) -> tuple[str, str]:
        if name in _UNSUPPORTED_FUNCS:
            raise UnsupportedTemplate(name, line, _UNSUPPORTED_FUNCS[name])
        if name not in _FUNCS:
            raise TemplateError(f'function "{name}" not defined', line)
        low, high = _FUNCS[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise TemplateError(f"wrong number of args for {name}: got {len(args)}", line)
        codes = [code for code, _ in args]
        joined = ", ".join(codes)
        if name in ("and", "or"):
            return "(" + f" {name} ".join(codes) + ")", "any"
        if name == "not":
            return f"(not {codes[0]})", "bool"
        if name == "eq":
            if len(codes) == 2:
                return f"({codes[0]} == {codes[1]})", "bool"
            return f"go_eq({joined})", "bool"
        if name in _COMPARE:
            return f"({codes[0]} {_COMPARE[name]} {codes[1]})", "bool"
        if name == "len":
            return f"go_len({joined})", "int"
        if name == "slice":
            return f"go_slice({joined})", args[0][1]
        if name == "index":
            base = args[0][1]
            return f"go_index({joined})", base[2:] if base.startswith("[]") else "any"
        if name == "json":
            return f"go_json({joined})", "string"
        if name in ("print", "println"):
            return f"go_{name}({joined})", "string"
        if name == "yesterdayDate":
            return f"go_yesterday_date({joined})", "string"
        return f"go_current_date({joined})", "string"

    def command(
        self, cmd: Command, scope: _Scope, piped: tuple[str, str] | None
    ) -> tuple[str, str]:
        first, rest = cmd.args[0], cmd.args[1:]
        if isinstance(first, Func):
            args = [self.arg(a, scope, cmd.line) for a in rest]
            return self.call(first.name, args + ([piped] if piped else []), cmd.line)
        if rest or piped:
            raise UnsupportedTemplate(
                "method call", cmd.line, "only functions take arguments in corral's templates"
            )
        return self.arg(first, scope, cmd.line)

    def pipe(self, pipe: Pipe, scope: _Scope) -> tuple[str, str]:
        result: tuple[str, str] | None = None
        for cmd in pipe.cmds:
            result = self.command(cmd, scope, result)
        assert result is not None
        return result

    # -- statements ---------------------------------------------------------------------

    def emit(self, text: str) -> None:
        self.out.append(text)

    def declare(self, slot: str, code: str, gotype: str) -> None:
        self.types[slot] = gotype
        self.emit(f"{{% set _v.{slot} = {code} %}}")

    def nodes(self, nodes: list[Node], scope: _Scope) -> None:
        for node in nodes:
            if isinstance(node, Text):
                text = node.value
                safe = "{" not in text and "\r" not in text
                self.emit(text if safe else f"{{{{ {self.const(text)} }}}}")
            elif isinstance(node, Action):
                code, gotype = self.pipe(node.pipe, scope)
                if node.pipe.decl:  # an assignment may change the type: forget it
                    self.declare(node.pipe.decl[0], code, "any" if node.pipe.assign else gotype)
                else:
                    self.emit(f"{{{{ {code} }}}}")
            elif isinstance(node, LoopControl):
                self.emit(f"{{% {node.kind} %}}")
            elif node.kind == "range":
                self.range(node, scope)
            else:
                self.branch(node, scope)

    def branch(self, node: Branch, scope: _Scope) -> None:
        code, gotype = self.pipe(node.pipe, scope)
        inner = scope
        if node.pipe.decl:
            self.declare(node.pipe.decl[0], code, "any" if node.pipe.assign else gotype)
            code = f"_v.{node.pipe.decl[0]}"
        if node.kind == "with":
            self.depth += 1
            slot = f"with_{self.depth}"
            self.declare(slot, code, gotype)
            code = f"_v.{slot}"
            inner = _Scope(code, gotype)
        self.emit(f"{{% if {code} %}}")
        self.nodes(node.body, inner)
        if node.orelse is not None:
            self.emit("{% else %}")
            self.nodes(node.orelse, scope)
        self.emit("{% endif %}")

    def range(self, node: Branch, scope: _Scope) -> None:
        code, gotype = self.pipe(node.pipe, scope)
        if gotype in _SCALARS - {"int"}:
            raise TemplateError(f"range can't iterate over {gotype}", node.line)
        elem = gotype[2:] if gotype.startswith("[]") else "any"
        key = "int" if gotype.startswith("[]") or gotype == "int" else "any"
        self.depth += 1
        k, d = f"_k{self.depth}", f"_d{self.depth}"
        self.emit(f"{{% for {k}, {d} in go_range({code}) %}}")
        decl = node.pipe.decl
        if len(decl) == 1:
            self.declare(decl[0], d, elem)
        elif len(decl) == 2:
            self.declare(decl[0], k, key)
            self.declare(decl[1], d, elem)
        self.nodes(node.body, _Scope(d, elem))
        if node.orelse is not None:
            self.emit("{% else %}")
            self.nodes(node.orelse, scope)
        self.emit("{% endfor %}")


def translate(nodes: list[Node]) -> Translation:
    """Jinja source (and its constants) equivalent to the Go template ``nodes``."""
    tr = _Translator()
    tr.emit("{% set _v = namespace() %}")
    tr.nodes(nodes, _Scope("_root", "Values"))
    return Translation("".join(tr.out), tr.constants)


def _mentions_response(pipe: Pipe) -> bool:
    for cmd in pipe.cmds:
        for arg in cmd.args:
            if isinstance(arg, Field) and "Response" in arg.names:
                return True
            if isinstance(arg, SubPipe) and _mentions_response(arg.pipe):
                return True
    return False


def cut_at_response(nodes: list[Node]) -> list[Node]:
    """Ollama's legacy-template trick: the prompt for the last turn is the template up to its
    first ``{{ .Response }}`` action; that action and everything after it are dropped
    (conditions are not searched, enclosing blocks keep what came before)."""
    cut = False

    def walk_list(items: list[Node]) -> list[Node]:
        out = []
        for item in items:
            kept = walk(item)
            if kept is not None:
                out.append(kept)
        return out

    def walk(node: Node) -> Node | None:
        nonlocal cut
        if cut:
            return None
        if isinstance(node, Action) and _mentions_response(node.pipe):
            cut = True
            return None
        if isinstance(node, Branch):
            body = walk_list(node.body)
            orelse = walk_list(node.orelse) if node.orelse is not None else None
            return Branch(node.kind, node.pipe, body, orelse, node.line)
        return node

    return walk_list(nodes)
