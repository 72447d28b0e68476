"""``corral run MODEL [PROMPT...]``: one answer, or a chat session when there is no prompt.

The answer streams token by token from ``POST /api/chat``. With ``--verbose`` the timings
that ``ollama run --verbose`` prints follow it on stderr. When stdout is a terminal, long
lines wrap at word boundaries (``--nowordwrap`` turns that off). A thinking model's thoughts
come first, between "Thinking..." and "...done thinking." (grey on a terminal) unless
``--hidethinking``. For a vision model, image file paths in a prompt become its images.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from corral.cli._format import stats_lines
from corral.cli._images import extract_images, image_words
from corral.cli.main import CommandError

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.client import Client

__all__ = ["Session", "WordWrap", "load_model", "run", "stream_reply", "user_message"]

Message = dict[str, Any]
GREY, BOLD, RESET = "\x1b[90m", "\x1b[1m", "\x1b[0m"


@dataclass
class Session:
    """What a conversation sends with every turn."""

    model: str
    keep_alive: str | None = None
    format: str | dict[str, Any] | None = None
    verbose: bool = False
    wordwrap: bool = True
    think: bool | str | None = None  # None: the server's default
    hide_thinking: bool = False
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    history: list[Message] = field(default_factory=list)
    vision: bool | None = None  # asked of /api/show once a prompt names an image file


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

    def raw(self, text: str) -> None:
        """Write ``text`` (markers, colours) after the pending word, outside the wrapping."""
        self._flush_word()
        self.out.write(text)
        if "\n" in text:
            self.column = 0
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


def _marker(text: str, tty: bool, opening: bool = False) -> str:
    """Ollama's "Thinking..." / "...done thinking." lines: bold grey on a terminal."""
    if not tty:
        return text
    return GREY + BOLD + text + RESET + (GREY if opening else "")


def stream_reply(
    client: Client, session: Session, messages: list[Message], end: str = "\n"
) -> Message | None:
    """Stream one answer to stdout, then ``end``; return the assistant message (``None``
    when the stream ended without its final chunk). ``--verbose`` stats go to stderr.

    Thinking is shown before the answer unless hidden, and never kept in the history.
    The connection is closed however this ends, so Ctrl-C (``KeyboardInterrupt``, which
    propagates) also stops the generation on the server.
    """
    out = sys.stdout
    tty = out.isatty()
    writer = WordWrap(out, wrap_width(out, session))
    stream = client.chat(
        session.model,
        messages,
        options=session.options or None,
        system=session.system,
        format=session.format,
        keep_alive=session.keep_alive,
        think=session.think,
    )
    parts: list[str] = []
    thought, thinking = "", False
    final: dict[str, Any] | None = None
    try:
        for chunk in stream:
            message = chunk.get("message") or {}
            if (text := str(message.get("thinking") or "")) and not session.hide_thinking:
                if not thinking:
                    writer.raw(_marker("Thinking...\n", tty, opening=True))
                    thought, thinking = "", True
                thought += text
                writer.write(text)
            if text := str(message.get("content") or ""):
                if thinking:
                    newline = "" if thought.endswith("\n") else "\n"
                    writer.raw(newline + _marker("...done thinking.\n\n", tty))
                    thinking = False
                parts.append(text)
                writer.write(text)
            if chunk.get("done"):
                final = chunk
    finally:
        stream.close()
        if thinking and tty:
            writer.raw(RESET)
        writer.finish()
    out.write(end)
    out.flush()
    if final is None:
        return None
    if session.verbose:
        print("\n".join(stats_lines(final)), file=sys.stderr)
    return {"role": "assistant", "content": "".join(parts)}


def supports_vision(client: Client, session: Session) -> bool:
    """Does the model take images? Its ``capabilities`` (or, from older servers, a
    projector or vision metadata) say; asked once per session."""
    if session.vision is None:
        info = client.show(session.model)
        model_info = info.get("model_info") or {}
        session.vision = (
            "vision" in (info.get("capabilities") or [])
            or bool(info.get("projector_info"))
            or any(".vision." in key for key in model_info)
        )
    return session.vision


def user_message(client: Client, session: Session, text: str) -> Message:
    """The user's message; image paths in ``text`` become ``images`` for a vision model."""
    if image_words(text) and supports_vision(client, session):
        text, images = extract_images(text)
        return {"role": "user", "content": text, "images": images}
    return {"role": "user", "content": text}


def load_model(client: Client, session: Session) -> None:
    """An empty chat loads the model, so that errors (unknown model ...) show at once.

    ``think`` goes with it, as with Ollama, so a model that cannot think fails here.
    """
    for _ in client.chat(session.model, [], keep_alive=session.keep_alive, think=session.think):
        pass


def parse_think(value: str | None) -> bool | str | None:
    """``--think`` / ``--think=false`` / ``--think=high``: the request's ``think``."""
    return {None: None, "true": True, "false": False}.get(value, value)


def parse_format(value: str | None) -> str | dict[str, Any] | None:
    """``--format json``, or ``--format '{"type": "object", ...}'`` (a JSON schema)."""
    if value is None or value == "json":
        return value
    try:
        schema = json.loads(value)
    except ValueError:
        schema = None
    if not isinstance(schema, dict):
        raise CommandError(f'invalid --format {value!r}: use "json" or a JSON schema object')
    return schema


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
        format=parse_format(args.format),
        verbose=args.verbose,
        wordwrap=not args.nowordwrap,
        think=parse_think(args.think),
        hide_thinking=args.hidethinking,
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
    stream_reply(client, session, [user_message(client, session, prompt)], end=end)
    return 0
