"""``corral run MODEL [PROMPT...]``: one answer, or a chat session when there is no prompt.

The answer streams token by token from ``POST /api/chat``. With ``--verbose`` the timings
that ``ollama run --verbose`` prints follow it on stderr. When stdout is a terminal, long
lines wrap at word boundaries (``--nowordwrap`` turns that off).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from corral.cli._format import stats_lines

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.client import Client

__all__ = ["Session", "WordWrap", "load_model", "run", "stream_reply"]

Message = dict[str, Any]


@dataclass
class Session:
    """What a conversation sends with every turn."""

    model: str
    keep_alive: str | None = None
    format: str | None = None
    verbose: bool = False
    wordwrap: bool = True
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    history: list[Message] = field(default_factory=list)


class WordWrap:
    """Writes streamed text, moving a word that would cross ``width`` to the next line.

    A word is held back until the character after it arrives (or :meth:`finish`), so a
    line is never broken inside a word. ``width=None`` writes text through unchanged.
    """

    def __init__(self, out: TextIO, width: int | None) -> None:
        self.out, self.width = out, width
        self.column = 0
        self.word = ""

    def write(self, text: str) -> None:
        if self.width is None:
            self.out.write(text)
        else:
            for ch in text:
                if ch not in " \n":
                    self.word += ch
                    if len(self.word) >= self.width:
                        self._flush_word()
                    continue
                self._flush_word()
                if ch == "\n" or self.column >= self.width:
                    self.out.write("\n")
                    self.column = 0
                else:
                    self.out.write(" ")
                    self.column += 1
        self.out.flush()

    def _flush_word(self) -> None:
        if not self.word or self.width is None:
            return
        if self.column and self.column + len(self.word) > self.width:
            self.out.write("\n")
            self.column = 0
        self.out.write(self.word)
        self.column += len(self.word)
        self.word = ""

    def finish(self) -> None:
        self._flush_word()
        self.out.flush()


def wrap_width(out: TextIO, session: Session) -> int | None:
    """Like Ollama: wrap only on a terminal at least 10 columns wide, 5 columns early."""
    if not session.wordwrap or session.format is not None or not out.isatty():
        return None
    columns = shutil.get_terminal_size().columns
    return columns - 5 if columns >= 10 else None


def stream_reply(
    client: Client, session: Session, messages: list[Message], end: str = "\n"
) -> Message | None:
    """Stream one answer to stdout, then ``end``; return the assistant message (``None``
    when the stream ended without its final chunk). ``--verbose`` stats go to stderr.

    The connection is closed however this ends, so Ctrl-C (``KeyboardInterrupt``, which
    propagates) also stops the generation on the server.
    """
    out = sys.stdout
    writer = WordWrap(out, wrap_width(out, session))
    stream = client.chat(
        session.model,
        messages,
        options=session.options or None,
        system=session.system,
        format=session.format,
        keep_alive=session.keep_alive,
    )
    parts: list[str] = []
    final: dict[str, Any] | None = None
    try:
        for chunk in stream:
            if text := str((chunk.get("message") or {}).get("content") or ""):
                parts.append(text)
                writer.write(text)
            if chunk.get("done"):
                final = chunk
    finally:
        stream.close()
        writer.finish()
    out.write(end)
    out.flush()
    if final is None:
        return None
    if session.verbose:
        print("\n".join(stats_lines(final)), file=sys.stderr)
    return {"role": "assistant", "content": "".join(parts)}


def load_model(client: Client, session: Session) -> None:
    """An empty chat loads the model, so that errors (unknown model ...) show at once."""
    for _ in client.chat(session.model, [], keep_alive=session.keep_alive):
        pass


def read_prompt(args: argparse.Namespace, stdin: TextIO) -> str:
    """The words after MODEL, followed by whatever is piped in on stdin."""
    prompt = " ".join(args.prompt)
    if not stdin.isatty():
        piped = stdin.read()
        if piped.strip():
            prompt = f"{prompt}\n\n{piped}" if prompt else piped
    return prompt


def run(args: argparse.Namespace, ctx: Context) -> int:
    session = Session(
        model=args.model,
        keep_alive=args.keepalive,
        format=args.format,
        verbose=args.verbose,
        wordwrap=not args.nowordwrap,
    )
    client = ctx.client_factory()
    interactive = not args.prompt and ctx.stdin.isatty()
    if interactive:
        from corral.cli.repl import Repl

        return Repl(client, session, use_readline=ctx.stdin is sys.__stdin__).loop()
    prompt = read_prompt(args, ctx.stdin)
    if not prompt.strip():
        load_model(client, session)
        return 0
    end = "\n\n" if session.verbose else "\n"
    stream_reply(client, session, [{"role": "user", "content": prompt}], end=end)
    return 0
