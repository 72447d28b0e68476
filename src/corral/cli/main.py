"""The ``corral`` command: argparse here, each command's code in its own module, imported
only when that command runs (``corral list`` must not pay for the server's imports).

Tests call :func:`main` with ``client_factory`` (e.g. a :class:`~corral.client.Client` on an
``httpx.MockTransport``) and ``stdin``; nothing global is patched.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from corral import __version__

if TYPE_CHECKING:
    from corral.client import Client

__all__ = ["Context", "build_parser", "main"]

RUN_HELP = """\
Without a PROMPT and with stdin a terminal, starts a chat session (type /? for help).
With a PROMPT, or with input piped in (added after the PROMPT), prints one answer.

corral run does not start a server: if none is running it says so and exits with status 1.
Start one with "corral serve" (or "make run") in another terminal.
"""


@dataclass(frozen=True)
class Context:
    """What a command needs from outside: a way to make a client, and stdin."""

    client_factory: Callable[[], Client]
    stdin: TextIO


def _default_client() -> Client:
    from corral.client import Client

    return Client()


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog is computed only when its help is printed."""

    def __init__(self, *args: Any, epilog_factory: Callable[[], str] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self._epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self._epilog_factory is not None:
            self.epilog, self._epilog_factory = self._epilog_factory(), None
        return super().format_help()


def _serve_epilog() -> str:
    from corral.cli.serve import settings_epilog

    return settings_epilog()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="corral",
        description="Run large language models locally, behind an Ollama-compatible API.",
    )
    parser.add_argument(
        "-v", "--version", action="version", version=f"corral version {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = sub.add_parser(
        "serve",
        help="Start the server",
        description="Start the corral server in the foreground.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog_factory=_serve_epilog,
    )
    serve.add_argument("--host", help="address to listen on (overrides CORRAL_HOST)")
    serve.set_defaults(handler="serve:serve")

    for name, aliases in (("list", ["ls"]), ("ps", [])):
        what = "List models" if name == "list" else "List running models"
        cmd = sub.add_parser(name, aliases=aliases, help=what, description=what + ".")
        cmd.add_argument("prefix", nargs="?", metavar="NAME", help="only names starting so")
        cmd.set_defaults(handler="models:list_models" if name == "list" else "models:ps")

    show = sub.add_parser("show", help="Show information for a model")
    show.add_argument("model", metavar="MODEL")
    fields = show.add_mutually_exclusive_group()
    for field in ("license", "modelfile", "parameters", "system", "template"):
        fields.add_argument(f"--{field}", action="store_true", help=f"show the model's {field}")
    show.set_defaults(handler="models:show")

    health = sub.add_parser(
        "health",
        help="Exit 0 when the server is ready, 1 otherwise",
        description="Ask GET /health/ready; exit 0 on 200, else print the reason and exit 1.",
    )
    health.set_defaults(handler="health:health")

    run = sub.add_parser(
        "run",
        help="Run a model",
        description="Chat with a model, or get one answer to PROMPT.",
        epilog=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("model", metavar="MODEL")
    run.add_argument("prompt", nargs="*", metavar="PROMPT")
    run.add_argument("--verbose", action="store_true", help="show timings for each response")
    run.add_argument("--keepalive", metavar="DURATION", help="how long the model stays loaded")
    run.add_argument("--format", choices=["json"], help="response format")
    run.add_argument("--nowordwrap", action="store_true", help="don't wrap words")
    run.set_defaults(handler="run:run")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: Callable[[], Client] | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the ``corral`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler_name: str | None = getattr(args, "handler", None)
    if handler_name is None:
        parser.print_help()
        return 0
    module_name, func_name = handler_name.split(":")
    handler = getattr(importlib.import_module(f"corral.cli.{module_name}"), func_name)
    ctx = Context(client_factory or _default_client, stdin if stdin is not None else sys.stdin)

    from corral.client import ClientError

    try:
        status: int = handler(args, ctx)
    except ClientError as exc:  # ServerUnreachable included: its message says what to do
        sys.stdout.flush()
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. ``corral list | head -1``: silence the exit-time flush
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status
