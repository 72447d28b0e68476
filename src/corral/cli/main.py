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

__all__ = ["CommandError", "Context", "build_parser", "main"]

RUN_HELP = """\
Without a PROMPT and with stdin a terminal, starts a chat session (type /? for help).
With a PROMPT, or with input piped in (added after the PROMPT), prints one answer.

corral run does not start a server: if none is running it says so and exits with status 1.
Start one with "corral serve" (or "make run") in another terminal.
"""


CREATE_HELP = """\
Reads the Modelfile here and sends it to the server as an /api/create request. A FROM that
names a local GGUF file (or a directory holding one; relative to the Modelfile, ~ allowed)
is uploaded first, as is each ADAPTER; any other FROM names a model the server has.
Without -f, ./Modelfile is used; with no ./Modelfile, FROM . (the GGUF file here).
"""

THINK_VALUES = ("true", "false", "high", "medium", "low")


class CommandError(Exception):
    """A mistake :func:`main` reports as one ``Error: ...`` line (exit status 1)."""


@dataclass(frozen=True)
class Context:
    """What a command needs from outside: a way to make a client, and stdin."""

    client_factory: Callable[[], Client]
    stdin: TextIO


def _default_client() -> Client:
    from corral.client import Client

    return Client()


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog is computed only when its help is printed, and which
    can take options among positionals (``intermixed``: ``corral run m --verbose hi``)."""

    def __init__(
        self,
        *args: Any,
        epilog_factory: Callable[[], str] | None = None,
        intermixed: bool = False,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self._epilog_factory = epilog_factory
        self._intermixed = intermixed

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self._intermixed:
            return super().parse_known_args(args, namespace)
        self._intermixed = False  # parse_known_intermixed_args calls back in here
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = True

    def format_help(self) -> str:
        if self._epilog_factory is not None:
            self.epilog, self._epilog_factory = self._epilog_factory(), None
        return super().format_help()


def _serve_epilog() -> str:
    from corral.cli.serve import settings_epilog

    return settings_epilog()


def _model_commands(sub: Any) -> None:
    """create, show, stop, list, ps, cp, rm: Ollama's model management commands."""
    create = sub.add_parser(
        "create",
        help="Create a model from a Modelfile",
        description="Create model NAME from a Modelfile.",
        epilog=CREATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("-f", "--file", help='name of the Modelfile (default "Modelfile")')
    create.add_argument("-q", "--quantize", help="quantize the model to this level (e.g. q4_K_M)")
    create.set_defaults(handler="create:create")

    show = sub.add_parser("show", help="Show information for a model")
    show.add_argument("model", metavar="MODEL")
    fields = show.add_mutually_exclusive_group()
    for field in ("license", "modelfile", "parameters", "system", "template"):
        fields.add_argument(f"--{field}", action="store_true", help=f"show the model's {field}")
    show.add_argument(
        "-v", "--verbose", action="store_true", help="show all model metadata (and tensors)"
    )
    show.set_defaults(handler="models:show")

    run = sub.add_parser(
        "run",
        help="Run a model",
        description="Chat with a model, or get one answer to PROMPT.",
        epilog=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        intermixed=True,
    )
    _run_arguments(run)

    stop = sub.add_parser("stop", help="Stop a running model", description="Unload MODEL now.")
    stop.add_argument("model", metavar="MODEL")
    stop.set_defaults(handler="manage:stop")

    for name, aliases in (("list", ["ls"]), ("ps", [])):
        what = "List models" if name == "list" else "List running models"
        cmd = sub.add_parser(name, aliases=aliases, help=what, description=what + ".")
        cmd.add_argument("prefix", nargs="?", metavar="NAME", help="only names starting so")
        cmd.set_defaults(handler="models:list_models" if name == "list" else "models:ps")

    cp = sub.add_parser("cp", help="Copy a model", description="Copy SOURCE to DESTINATION.")
    cp.add_argument("source", metavar="SOURCE")
    cp.add_argument("destination", metavar="DESTINATION")
    cp.set_defaults(handler="manage:copy")

    rm = sub.add_parser("rm", help="Remove a model", description="Unload and delete models.")
    rm.add_argument("models", nargs="+", metavar="MODEL")
    rm.set_defaults(handler="manage:remove")


def _registry_commands(sub: Any) -> None:
    """pull, push, login, logout (their code: corral.cli.registry)."""
    for name, verb in (
        ("pull", "Pull a model from a registry"),
        ("push", "Push a model to a registry"),
    ):
        cmd = sub.add_parser(name, help=verb, description=verb + ".")
        cmd.add_argument("model", metavar="NAME")
        cmd.add_argument("--insecure", action="store_true", help="allow plain-HTTP registries")
        cmd.set_defaults(handler=f"registry:{name}")
    login = sub.add_parser(
        "login",
        help="Store credentials for a registry",
        description="Store a username and password for HOST in $CORRAL_HOME (mode 0600).",
    )
    login.add_argument("host", metavar="HOST")
    login.add_argument("-u", "--username", help="user name (asked for when missing)")
    login.add_argument("--password-stdin", action="store_true", help="read the password on stdin")
    login.set_defaults(handler="registry:login")
    logout = sub.add_parser("logout", help="Remove stored credentials for a registry")
    logout.add_argument("host", metavar="HOST")
    logout.set_defaults(handler="registry:logout")


def _machine_commands(sub: Any) -> None:
    """info, fit (their code: corral.cli.info, corral.cli.fit)."""
    info = sub.add_parser(
        "info",
        help="Show the server's hardware, engine, store and settings",
        description="CPU, RAM, GPUs, the engine (path, version, backends), the model store "
        "and the effective settings of the running server (of this machine if none runs).",
    )
    info.add_argument("--json", action="store_true", help="print the JSON of GET /api/info")
    info.set_defaults(handler="info:info")
    fit = sub.add_parser(
        "fit",
        help="Say whether a model fits the server's RAM and VRAM",
        description="Estimate the memory MODEL needs (weights, KV cache, compute buffer) and "
        "whether it fits the server's GPUs and RAM. A model not pulled yet is read from its "
        "registry (manifest and GGUF header only). Exit status 1 when it does not fit.",
    )
    fit.add_argument("model", metavar="MODEL")
    fit.add_argument("--ctx", type=int, metavar="N", help="context per slot (num_ctx)")
    fit.add_argument("--parallel", type=int, metavar="N", help="parallel slots (num_parallel)")
    fit.add_argument("--gpu-layers", type=int, metavar="N", help="layers to offload (num_gpu)")
    fit.add_argument("--insecure", action="store_true", help="allow plain-HTTP registries")
    fit.add_argument("--json", action="store_true", help="print the JSON of POST /api/fit")
    fit.set_defaults(handler="fit:fit")


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("model", metavar="MODEL")
    run.add_argument("prompt", nargs="*", metavar="PROMPT")
    run.add_argument("--verbose", action="store_true", help="show timings for each response")
    run.add_argument("--keepalive", metavar="DURATION", help="how long the model stays loaded")
    run.add_argument("--format", help='response format: "json", or a JSON schema')
    run.add_argument(
        "--think",
        action="store_const",
        const="true",
        help="thinking: --think, --think=false, or --think=high|medium|low",
    )
    for value in THINK_VALUES:  # like cobra's NoOptDefVal: a value only after "="
        run.add_argument(
            f"--think={value}", dest="think", action="store_const", const=value,
            help=argparse.SUPPRESS,
        )  # fmt: skip
    run.add_argument("--hidethinking", action="store_true", help="don't show the thinking")
    run.add_argument("--nowordwrap", action="store_true", help="don't wrap words")
    run.set_defaults(handler="run:run")


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
    serve.add_argument(
        "--provision", metavar="FILE", help="models to provision at start (CORRAL_PROVISION)"
    )
    serve.add_argument(
        "--pull", metavar="NAMES", help="models to pull at start, comma-separated (CORRAL_PULL)"
    )
    serve.add_argument(
        "--replicas",
        metavar="URLS",
        help="route to these corral servers instead of serving models (CORRAL_REPLICAS)",
    )
    serve.set_defaults(handler="serve:serve")

    worker = sub.add_parser(
        "worker",
        help="Lend this machine's memory to a corral server (llama.cpp RPC)",
        description="Run llama.cpp's rpc-server in the foreground, so a corral server with "
        "CORRAL_RPC_WORKERS=HOST:PORT can place a model's layers here. The RPC protocol has "
        "no authentication: anyone who reaches the port can use the machine, so it listens "
        "on loopback unless --allow-remote is given (then only on a trusted network).",
    )
    worker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    worker.add_argument("--port", type=int, default=50052, help="port (default 50052)")
    worker.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    worker.add_argument(
        "--allow-remote", action="store_true", help="listen on a non-loopback address"
    )
    worker.add_argument(
        "--no-cache", action="store_true", help="do not keep received weights in CORRAL_HOME"
    )
    worker.set_defaults(handler="worker:worker")

    provision = sub.add_parser(
        "provision",
        help="Pull and create the models a file lists, then exit",
        description="Provision the models FILE lists into the store ($CORRAL_MODELS) once, "
        "without a server (init containers, baking models into an image); exit 1 when a "
        "required model fails. preload entries are loaded only by a server.",
    )
    provision.add_argument("file", metavar="FILE", nargs="?", help="the YAML file")
    provision.add_argument("--pull", metavar="NAMES", help="more models, comma-separated")
    provision.add_argument(
        "--check", action="store_true", help="only validate FILE (and --pull), print the plan"
    )
    provision.set_defaults(handler="provision:provision")

    _model_commands(sub)

    _registry_commands(sub)

    from corral.cli.bench import add_parser as add_bench_parser

    add_bench_parser(sub)

    health = sub.add_parser(
        "health",
        help="Exit 0 when the server is ready, 1 otherwise",
        description="Ask GET /health/ready; exit 0 on 200, else print the reason and exit 1.",
    )
    health.set_defaults(handler="health:health")

    _machine_commands(sub)

    help_cmd = sub.add_parser("help", help="Help about any command")
    help_cmd.add_argument("topic", nargs="?", metavar="COMMAND")
    help_cmd.set_defaults(help_for=sub.choices)
    return parser


def _help(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    topic: str | None = getattr(args, "topic", None)
    commands: dict[str, argparse.ArgumentParser] = getattr(args, "help_for", {})
    if topic and topic not in commands:
        print(f"Error: unknown command '{topic}'; see corral --help", file=sys.stderr)
        return 1
    (commands[topic] if topic else parser).print_help()
    return 0


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
    if handler_name is None:  # no command, or "corral help [COMMAND]"
        return _help(parser, args)
    module_name, func_name = handler_name.split(":")
    handler = getattr(importlib.import_module(f"corral.cli.{module_name}"), func_name)
    ctx = Context(client_factory or _default_client, stdin if stdin is not None else sys.stdin)

    from corral.client import ClientError

    try:
        status: int = handler(args, ctx)
    except ClientError as exc:  # ServerUnreachable included: its message says what to do
        sys.stdout.flush()
        hint = ""
        if exc.status_code == 401:
            hint = " (the corral command sends $CORRAL_API_KEY, else $OLLAMA_API_KEY)"
        print(f"Error: {exc.message}{hint}", file=sys.stderr)
        return 1
    except CommandError as exc:
        sys.stdout.flush()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. ``corral list | head -1``: silence the exit-time flush
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status
