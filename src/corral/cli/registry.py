"""``corral pull``, ``corral push`` (a rich progress bar per layer), ``login`` and ``logout``.

rich is imported only here, and only when a pull or push prints progress.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from corral.cli.main import CommandError

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.client import Client

__all__ = ["login", "logout", "pull", "push", "show_progress", "warn_if_too_big"]


def show_progress(chunks: Iterable[dict[str, Any]]) -> None:
    """One bar per layer (size, speed, ETA); other statuses as plain lines."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bars:
        for chunk in chunks:
            status = str(chunk.get("status", ""))
            digest = chunk.get("digest")
            if digest and chunk.get("total") is not None:
                total = int(chunk["total"])
                if digest not in tasks:
                    tasks[digest] = bars.add_task(status, total=total)
                bars.update(tasks[digest], completed=int(chunk.get("completed") or 0))
            else:
                bars.console.print(status)


def warn_if_too_big(client: Client, model: str, *, insecure: bool) -> None:
    """Say so (and go on) when the server's machine cannot run ``model`` (``POST /api/fit``:
    the registry manifest and the GGUF header, before the download)."""
    from corral.client import ClientError, ServerUnreachable

    try:
        report = client.fit(model, insecure=insecure or None)
    except ServerUnreachable:
        raise
    except (ClientError, ValueError):
        return  # no estimate (an older server, a Hugging Face model): the pull goes on
    if isinstance(report, dict) and report.get("fits") is False:
        print(
            f"warning: {model} will not fit this server: {report.get('verdict')}; pulling anyway",
            file=sys.stderr,
        )


def pull(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client_factory()
    warn_if_too_big(client, args.model, insecure=args.insecure)
    show_progress(client.pull(args.model, insecure=args.insecure))
    return 0


def push(args: argparse.Namespace, ctx: Context) -> int:
    show_progress(ctx.client_factory().push(args.model, insecure=args.insecure))
    return 0


def _store() -> Any:
    from corral.config import Settings
    from corral.registry.credentials import CredentialStore

    return CredentialStore(Settings().home.expanduser() / "credentials.json")


def login(args: argparse.Namespace, ctx: Context) -> int:
    from corral.registry.credentials import Credential

    username = args.username or input("Username: ").strip()
    if args.password_stdin:
        password = ctx.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CommandError("a username and a password are required")
    _store().set(args.host, Credential(username, password))
    print(f"Login Succeeded (credentials for {args.host} stored)", file=sys.stderr)
    return 0


def logout(args: argparse.Namespace, ctx: Context) -> int:
    if not _store().remove(args.host):
        raise CommandError(f"not logged in to {args.host}")
    print(f"Removed login credentials for {args.host}", file=sys.stderr)
    return 0
