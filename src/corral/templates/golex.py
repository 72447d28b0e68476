"""Lexer for Go's text/template: text, ``{{ actions }}`` with ``{{-``/``-}}`` trimming, comments.

Trimming is applied here, to the text tokens, so the parser never sees the markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.templates.errors import TemplateError

__all__ = ["Token", "lex"]

_SPACE = " \t\r\n"
# Order matters: longer and more specific first.
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)i?)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<pipe>\|)
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # text | open | close | one of _TOKEN's group names
    value: str
    line: int
    spaced: bool = False  # preceded by white space (a field after a space is a new operand)


def _trim_left(tokens: list[Token]) -> None:
    if tokens and tokens[-1].kind == "text":
        last = tokens[-1]
        tokens[-1] = Token("text", last.value.rstrip(_SPACE), last.line)


def lex(source: str) -> list[Token]:
    """Tokens of ``source``; raise :class:`TemplateError` on an unclosed action or bad token."""
    tokens: list[Token] = []
    pos, line, trim_next = 0, 1, False
    while pos < len(source):
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if text:
            tokens.append(Token("text", text, line))
        line += source.count("\n", pos, len(source) if start < 0 else start)
        if start < 0:
            break
        pos, trim_next = _action(source, start + 2, line, tokens)
        line += source.count("\n", start, pos)
    return tokens


def _action(source: str, pos: int, line: int, tokens: list[Token]) -> tuple[int, bool]:
    """Lex one action starting after ``{{``; return the position after ``}}`` and whether
    the following text is trimmed."""
    if source.startswith("-", pos) and source[pos + 1 : pos + 2] in tuple(_SPACE):
        _trim_left(tokens)
        pos += 2
    inner = pos
    while inner < len(source) and source[inner] in _SPACE:
        inner += 1
    if source.startswith("/*", inner):
        end = source.find("*/", inner + 2)
        if end < 0:
            raise TemplateError("unclosed comment", line)
        rest = end + 2
        for closing, trims in (("}}", False), (" -}}", True)):
            if source.startswith(closing, rest):
                return rest + len(closing), trims
        raise TemplateError("comment ends before closing delimiter", line)
    tokens.append(Token("open", "{{", line))
    spaced = True
    while True:
        if pos >= len(source):
            raise TemplateError("unclosed action", line)
        if source.startswith("}}", pos):
            tokens.append(Token("close", "}}", line))
            return pos + 2, False
        if source.startswith("-}}", pos) and spaced:
            tokens.append(Token("close", "}}", line))
            return pos + 3, True
        match = _TOKEN.match(source, pos)
        if match is None or match.lastgroup is None:
            bad = source[pos : pos + 10].split()[0] if source[pos:].strip() else source[pos]
            raise TemplateError(f"unexpected {bad!r} in action", line)
        kind, value = match.lastgroup, match.group()
        if kind == "space":
            line += value.count("\n")
            spaced = True
        else:
            tokens.append(Token(kind, value, line, spaced))
            spaced = False
        pos = match.end()
