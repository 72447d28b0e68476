"""The interactive side of ``corral run``: a chat that keeps its history, like ``ollama run``.

Input comes from :func:`input` (with readline editing on a real terminal). ``\"\"\"`` opens
a multi-line message and a line ending in ``\"\"\"`` closes it. Ctrl-C stops an answer and
returns to the prompt; Ctrl-D or ``/bye`` leaves. ``/?`` lists the commands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from corral.cli._images import image_words
from corral.cli._repl_help import PARAMETER_HELP, SET_HELP, SHOW_HELP, help_for
from corral.cli.main import CommandError
from corral.cli.run import Session, load_model, stream_reply, user_message
from corral.client import ClientError, ServerUnreachable

if TYPE_CHECKING:
    from corral.client import Client

__all__ = ["Repl", "parse_value"]

PROMPT, CONTINUATION, QUOTES = ">>> ", "... ", '"""'

_FLAGS = {
    "verbose": ("verbose", True),
    "quiet": ("verbose", False),
    "wordwrap": ("wordwrap", True),
    "nowordwrap": ("wordwrap", False),
}


def parse_value(text: str) -> Any:
    """``/set parameter`` values: ints, then floats, then true/false, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    lowered = text.lower()
    return lowered == "true" if lowered in ("true", "false") else text


def _go(value: Any) -> str:
    """A parameter as Ollama's ``%v`` shows it: lists as ``[a b]``."""
    return "[" + " ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


class Repl:
    def __init__(self, client: Client, session: Session, *, use_readline: bool = False) -> None:
        self.client, self.session = client, session
        if use_readline:  # line editing and history for input(); absent on Windows
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401

    def loop(self) -> int:
        load_model(self.client, self.session)
        while True:
            try:
                text = self.read_message()
            except EOFError:
                print()
                return 0
            except KeyboardInterrupt:
                print("\nUse Ctrl + d or /bye to exit.")
                continue
            if text.startswith("/") and not image_words(text.split()[0]):
                if not self.command(text):
                    return 0
            elif text.strip():
                self.turn(text)

    def read_message(self) -> str:
        """One message: a line, or ``\"\"\"`` ... ``\"\"\"`` across lines."""
        line = input(PROMPT)
        start = line.find(QUOTES)
        opens = start >= 0 and (not line[:start].strip() or line.startswith("/set system"))
        if not opens:
            return line.strip()
        prefix, body = line[:start], line[start + len(QUOTES) :]
        lines = []
        while not body.endswith(QUOTES):
            lines.append(body)
            body = input(CONTINUATION)
        lines.append(body[: -len(QUOTES)])
        return (prefix + "\n".join(lines)).strip()

    def _report(self, exc: ClientError | CommandError, prefix: str = "") -> None:
        """A failed turn or command: say why on stderr and stay in the session."""
        if isinstance(exc, ServerUnreachable):
            raise exc
        message = exc.message if isinstance(exc, ClientError) else str(exc)
        print(f"{prefix}Error: {message}", file=sys.stderr)

    def turn(self, text: str) -> None:
        session = self.session
        try:
            user = user_message(self.client, session, text)
            reply = stream_reply(self.client, session, [*session.history, user], "\n\n")
        except KeyboardInterrupt:
            print("\n")
            return
        except (ClientError, CommandError) as exc:
            self._report(exc, "\n")
            return
        if reply is not None:
            session.history += [user, reply]

    def command(self, line: str) -> bool:
        """Run a ``/`` command; ``False`` means leave."""
        words = line.split()
        name = words[0]
        if name in ("/bye", "/exit"):
            return False
        try:
            if name == "/clear":
                self.session.history.clear()
                print("Cleared session context")
            elif name == "/set":
                self.set(line, words[1:])
            elif name == "/show":
                self.show(words[1:])
            elif name in ("/load", "/save") and len(words) != 2:
                print(f"Usage:\n  {name} <modelname>")
            elif name == "/load":
                self.load(words[1])
            elif name == "/save":
                self.save(words[1])
            elif name in ("/?", "/help"):
                print(help_for(words[1] if len(words) > 1 else ""))
            else:
                print(f"Unknown command '{name}'. Type /? for help")
        except (ClientError, CommandError) as exc:
            self._report(exc)
        return True

    def set(self, line: str, words: list[str]) -> None:
        session = self.session
        what = words[0] if words else ""
        if what == "parameter":
            if len(words) < 3:
                print("Usage:\n  /set parameter <name> <value>\n\n" + PARAMETER_HELP)
                return
            name, values = words[1], words[2:]
            if name == "stop":
                session.options.setdefault("stop", []).extend(values)
            else:
                session.options[name] = parse_value(" ".join(values))
            print(f"Set parameter '{name}' to '{', '.join(values)}'")
        elif what == "system":
            parts = line.split(None, 2)
            if len(parts) < 3:
                print("Usage:\n  /set system <message>")
                return
            session.system = parts[2].strip()
            print("Set system message.")
        elif what in _FLAGS:
            attr, value = _FLAGS[what]
            setattr(session, attr, value)
            print(f"Set '{what}' mode.")
        elif what == "format":
            if words[1:] != ["json"]:
                print("Invalid or missing format. For 'json' mode use '/set format json'")
                return
            session.format = "json"
            print("Set format to 'json' mode.")
        elif what == "noformat":
            session.format = None
            print("Disabled format.")
        elif what == "think":
            level = words[1] if len(words) > 1 else None
            session.think = level or True
            print(f"Set 'think' mode to '{level}'." if level else "Set 'think' mode.")
        elif what == "nothink":
            session.think = False
            print("Set 'nothink' mode.")
        elif what:
            print(f"Unknown command '/set {what}'. Type /? for help")
        else:
            print(SET_HELP)

    def show(self, words: list[str]) -> None:
        from corral.cli.models import SHOW_FIELDS, format_show, show_field

        session, what = self.session, words[0] if words else ""
        if what not in ("info", *SHOW_FIELDS):
            print(f"Unknown command '/show {what}'. Type /? for help" if what else SHOW_HELP)
            return
        if what == "system" and session.system:
            print(session.system)
            return
        info = self.client.show(session.model, system=session.system, options=session.options)
        if what == "info":
            print(format_show(info))
        elif what == "parameters":  # Ollama's layout: the model's, then the session's
            lines = [line for line in str(info.get("parameters") or "").splitlines() if line]
            print("Model defined parameters:")
            for text in lines or ["No additional parameters were specified for this model."]:
                print(f"  {text}")
            print()
            if session.options:
                print("User defined parameters:")
                for key, value in session.options.items():
                    print(f"  {key:<30} {_go(value)}")
                print()
        else:
            print(show_field(info, what))

    def load(self, model: str) -> None:
        """``/load MODEL``: a new session on another model; nothing of this one is kept
        but the display settings (verbose, wordwrap, format, think, keepalive)."""
        print(f"Loading model '{model}'")
        session = dataclasses.replace(
            self.session, model=model, system=None, options={}, history=[], vision=None
        )
        try:
            load_model(self.client, session)
        except ClientError as exc:
            if exc.status_code != 404:
                raise
            print(f"Couldn't find model '{model}'")
            return
        self.session = session

    def save(self, name: str) -> None:
        """``/save NAME``: a new model from this one, with the session's system message,
        parameters and history (``POST /api/create``, as Ollama's ``/save``)."""
        session = self.session
        fields = {
            "from_": session.model,
            "system": session.system or None,
            "parameters": dict(session.options) or None,
            "messages": list(session.history) or None,
        }
        for _ in self.client.create(name, **fields):
            pass
        print(f"Created new model '{name}'")
