"""The interactive side of ``corral run``: a chat that keeps its history, like ``ollama run``.

Input comes from :func:`input` (with readline editing on a real terminal). ``\"\"\"`` opens
a multi-line message and a line ending in ``\"\"\"`` closes it. Ctrl-C stops an answer and
returns to the prompt; Ctrl-D or ``/bye`` leaves.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from corral.cli.run import Session, load_model, stream_reply
from corral.client import ClientError, ServerUnreachable

if TYPE_CHECKING:
    from corral.client import Client

__all__ = ["Repl", "parse_value"]

PROMPT, CONTINUATION, QUOTES = ">>> ", "... ", '"""'

HELP = '''Available Commands:
  /set            Set session variables
  /show           Show model information
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command

Use """ to begin a multi-line message.
'''

SET_HELP = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
"""

PARAMETER_HELP = """Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter stop <string> <string> ...   Set the stop parameters
"""

SHOW_HELP = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
"""

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
            if text.startswith("/"):
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

    def turn(self, text: str) -> None:
        user = {"role": "user", "content": text}
        try:
            reply = stream_reply(self.client, self.session, [*self.session.history, user], "\n\n")
        except KeyboardInterrupt:
            print("\n")
            return
        except ServerUnreachable:
            raise
        except ClientError as exc:
            print(f"\nError: {exc.message}", file=sys.stderr)
            return
        if reply is not None:
            self.session.history += [user, reply]

    def command(self, line: str) -> bool:
        """Run a ``/`` command; ``False`` means leave."""
        words = line.split()
        name = words[0]
        if name in ("/bye", "/exit"):
            return False
        if name == "/clear":
            self.session.history.clear()
            print("Cleared session context")
        elif name == "/set":
            self.set(line, words[1:])
        elif name == "/show":
            self.show(words[1:])
        elif name in ("/?", "/help"):
            topic = words[1] if len(words) > 1 else ""
            print({"/set": SET_HELP, "/show": SHOW_HELP}.get("/" + topic.lstrip("/"), HELP))
        else:
            print(f"Unknown command '{name}'. Type /? for help")
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
        elif what == "format" and words[1:] == ["json"]:
            session.format = "json"
            print("Set format to 'json' mode.")
        elif what == "noformat":
            session.format = None
            print("Disabled format.")
        else:
            print(SET_HELP)

    def show(self, words: list[str]) -> None:
        from corral.cli.models import SHOW_FIELDS, format_show, show_field

        what = words[0] if words else ""
        if what not in ("info", *SHOW_FIELDS):
            print(SHOW_HELP)
            return
        if what == "system" and self.session.system:
            print(self.session.system)
            return
        try:
            info = self.client.show(self.session.model)
        except ServerUnreachable:
            raise
        except ClientError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            return
        print(format_show(info) if what == "info" else show_field(info, what))
        if what == "parameters" and self.session.options:
            print("\nUser defined parameters:")
            for key, value in self.session.options.items():
                print(f"{key:<30} {value}")
