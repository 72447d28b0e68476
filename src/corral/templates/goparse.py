"""Parser for the subset of Go's text/template that Ollama's library templates use.

Produces a small AST. Variables are resolved here, with Go's scoping (a variable lives until
the ``end`` of the block that declared it), to unique slot names, so the translator can keep
them all in one Jinja namespace and ``$x = ...`` inside a ``range`` updates the outer ``$x``
exactly as in Go. Undefined variables and misplaced ``break``/``continue`` are parse errors,
as in Go; ``define``/``template``/``block`` are refused by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corral.templates.errors import TemplateError, UnsupportedTemplate
from corral.templates.golex import Token, lex

__all__ = [
    "Action",
    "Branch",
    "Chain",
    "Command",
    "Dot",
    "Field",
    "Func",
    "Literal",
    "LoopControl",
    "Node",
    "Pipe",
    "SubPipe",
    "Text",
    "Tree",
    "Variable",
    "parse",
]


@dataclass
class Text:
    value: str


@dataclass
class Dot:
    pass


@dataclass
class Field:
    names: tuple[str, ...]  # .A.B relative to dot


@dataclass
class Variable:
    slot: str | None  # None is ``$``, the root
    names: tuple[str, ...] = ()


@dataclass
class Literal:
    value: Any


@dataclass
class Func:
    name: str


@dataclass
class SubPipe:
    pipe: Pipe


@dataclass
class Chain:
    node: SubPipe
    names: tuple[str, ...]


Arg = Dot | Field | Variable | Literal | Func | SubPipe | Chain


@dataclass
class Command:
    args: list[Arg]
    line: int


@dataclass
class Pipe:
    cmds: list[Command]
    line: int
    decl: list[str] = field(default_factory=list)  # slots declared or assigned
    assign: bool = False


@dataclass
class Action:
    pipe: Pipe


@dataclass
class Branch:
    kind: str  # if | range | with
    pipe: Pipe
    body: list[Node]
    orelse: list[Node] | None
    line: int


@dataclass
class LoopControl:
    kind: str  # break | continue


Node = Text | Action | Branch | LoopControl


@dataclass
class Tree:
    nodes: list[Node]
    fields: set[str]  # every field name referenced, lower-cased (Ollama's Template.Vars)


_UNSUPPORTED_KEYWORDS = {"define", "template", "block"}
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", *_UNSUPPORTED_KEYWORDS}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


def _unescape(body: str, line: int) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        if code.isdigit():
            return chr(int(code, 8))
        raise TemplateError(f"unknown escape sequence \\{code}", line)

    return _ESCAPE.sub(one, body)


def _number(text: str, line: int) -> int | float:
    if text.endswith("i"):
        raise UnsupportedTemplate("complex number", line)
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", clean):
            return int(clean, 8)
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|\d+)", clean):
            return int(clean, 0)
        return float(clean)
    except ValueError:
        raise TemplateError(f"bad number syntax: {text!r}", line) from None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.scopes: list[dict[str, str]] = [{}]
        self.slots = 0
        self.loops = 0
        self.fields: set[str] = set()

    # -- token helpers ------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.toks[-1].line if self.toks else 1
            raise TemplateError("unexpected end of template", last)
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.next()
        if tok.kind != kind:
            raise TemplateError(f"expected {what}, found {tok.value!r}", tok.line)
        return tok

    # -- variables ----------------------------------------------------------------------

    def declare(self, name: str) -> str:
        self.slots += 1
        # Never a leading underscore: the sandbox hides such attributes of the namespace.
        slot = f"v{self.slots}_{re.sub(r'[^A-Za-z0-9_]', '', name)}"
        self.scopes[-1][name] = slot
        return slot

    def resolve(self, name: str, line: int) -> str | None:
        if name == "$":
            return None
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f'undefined variable "{name}"', line)

    # -- structure ----------------------------------------------------------------------

    def parse(self) -> list[Node]:
        nodes, end = self.list()
        if end is not None:
            raise TemplateError(f"unexpected {{{{{end}}}}}", self.toks[self.i - 1].line)
        return nodes

    def list(self) -> tuple[list[Node], str | None]:
        nodes: list[Node] = []
        while (tok := self.peek()) is not None:
            if tok.kind == "text":
                self.i += 1
                nodes.append(Text(tok.value))
                continue
            self.i += 1  # the {{
            word = self.peek()
            keyword = word.value if word and word.kind == "ident" else ""
            if keyword in ("end", "else"):
                self.i += 1
                if keyword == "end":
                    self.expect("close", "}} after end")
                return nodes, keyword
            if keyword in ("if", "range", "with"):
                self.i += 1
                nodes.append(self.branch(keyword, tok.line))
            elif keyword in ("break", "continue"):
                self.i += 1
                if not self.loops:
                    raise TemplateError(f"{{{{{keyword}}}}} outside {{{{range}}}}", tok.line)
                self.expect("close", f"}} after {keyword}")
                nodes.append(LoopControl(keyword))
            elif keyword in _UNSUPPORTED_KEYWORDS:
                raise UnsupportedTemplate(keyword, tok.line, "named templates are not supported")
            else:
                pipe = self.pipeline(tok.line, declarations=True)
                self.expect("close", "}}")
                nodes.append(Action(pipe))
        return nodes, None

    def branch(self, kind: str, line: int) -> Branch:
        self.scopes.append({})
        pipe = self.pipeline(line, declarations=True, is_range=kind == "range")
        self.expect("close", "}}")
        self.loops += kind == "range"
        self.scopes.append({})
        body, end = self.list()
        self.scopes.pop()
        self.loops -= kind == "range"
        orelse: list[Node] | None = None
        if end == "else":
            chained = self.peek()
            if chained and chained.kind == "ident" and chained.value in ("if", "with"):
                if chained.value != kind or kind == "range":
                    raise TemplateError(f"{{{{else {chained.value}}}}} inside {kind}", line)
                self.i += 1
                orelse = [self.branch(kind, chained.line)]  # shares this branch's {{end}}
            else:
                self.expect("close", "}} after else")
                self.scopes.append({})
                orelse, end = self.list()
                self.scopes.pop()
                if end != "end":
                    raise TemplateError(f"{{{{{kind}}}}} has no matching {{{{end}}}}", line)
        elif end != "end":
            raise TemplateError(f"{{{{{kind}}}}} has no matching {{{{end}}}}", line)
        self.scopes.pop()
        return Branch(kind, pipe, body, orelse, line)

    # -- pipelines ----------------------------------------------------------------------

    def pipeline(self, line: int, *, declarations: bool, is_range: bool = False) -> Pipe:
        names: list[str] = []
        assign = False
        tok, after = self.peek(), self.peek(1)
        if declarations and tok and tok.kind == "var" and after:
            if after.kind == "comma" and is_range:
                second = self.peek(2)
                if not (second and second.kind == "var"):
                    raise TemplateError("range can only declare $index, $element", line)
                names = [tok.value, second.value]
                self.i += 3
                self.expect("declare", ":= after range variables")
            elif after.kind in ("declare", "assign"):
                names, assign = [tok.value], after.kind == "assign"
                self.i += 2
        cmds = [self.command()]
        while (tok := self.peek()) is not None and tok.kind == "pipe":
            self.i += 1
            cmds.append(self.command())
        if assign:
            decl = [s for s in (self.resolve(n, line) for n in names) if s is not None]
            if len(decl) != len(names):
                raise TemplateError("cannot assign to $", line)
        else:
            decl = [self.declare(n) for n in names]
        return Pipe(cmds, line, decl, assign)

    def command(self) -> Command:
        start = self.peek()
        line = start.line if start else 0
        args: list[Arg] = []
        while (tok := self.peek()) is not None and tok.kind not in ("close", "rparen", "pipe"):
            args.append(self.operand())
        if not args:
            raise TemplateError("missing value for command", line)
        return Command(args, line)

    def chain_names(self) -> tuple[str, ...]:
        names: list[str] = []
        while (tok := self.peek()) is not None and tok.kind == "field" and not tok.spaced:
            self.i += 1
            names.append(tok.value[1:])
        self.fields.update(n.lower() for n in names)
        return tuple(names)

    def operand(self) -> Arg:
        tok = self.next()
        if tok.kind == "field":
            self.fields.add(tok.value[1:].lower())
            return Field((tok.value[1:], *self.chain_names()))
        if tok.kind == "dot":
            return Dot()
        if tok.kind == "var":
            return Variable(self.resolve(tok.value, tok.line), self.chain_names())
        if tok.kind == "lparen":
            sub = SubPipe(self.pipeline(tok.line, declarations=False))
            self.expect("rparen", "')'")
            names = self.chain_names()
            return Chain(sub, names) if names else sub
        if tok.kind == "number":
            return Literal(_number(tok.value, tok.line))
        if tok.kind == "string":
            return Literal(_unescape(tok.value[1:-1], tok.line))
        if tok.kind == "raw":
            return Literal(tok.value[1:-1])
        if tok.kind == "char":
            text = _unescape(tok.value[1:-1], tok.line)
            if len(text) != 1:
                raise TemplateError(f"malformed character constant {tok.value}", tok.line)
            return Literal(ord(text))
        if tok.kind == "ident":
            if tok.value in ("true", "false"):
                return Literal(tok.value == "true")
            if tok.value == "nil":
                return Literal(None)
            if tok.value in _KEYWORDS:
                raise TemplateError(f"unexpected {tok.value!r} in operand", tok.line)
            return Func(tok.value)
        raise TemplateError(f"unexpected {tok.value!r} in operand", tok.line)


def parse(source: str) -> Tree:
    """Parse Go-template ``source``; raise :class:`TemplateError` with a line number."""
    parser = _Parser(lex(source))
    return Tree(parser.parse(), parser.fields)
