"""``corral pull``, ``corral push`` (a rich progress bar per layer), ``login`` and ``logout``.

rich is imported only here, and only when a pull or push prints progress.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from corral.cli.main import CommandError

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.client import Client

__all__ = ["fit_warning", "login", "logout", "pull", "push", "show_progress"]


def show_progress(
    chunks: Iterable[dict[str, Any]], notes: Future[str | None] | None = None
) -> None:
    """One bar per layer (size, speed, ETA); other statuses as plain lines; ``notes``: a
    line that arrives while the bars run (printed once, above them)."""
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
            if notes is not None and notes.done():
                if note := notes.result():
                    bars.console.print(note, style="yellow")
                notes = None
            status = str(chunk.get("status", ""))
            digest = chunk.get("digest")
            if digest and chunk.get("total") is not None:
                total = int(chunk["total"])
                if digest not in tasks:
                    tasks[digest] = bars.add_task(status, total=total)
                bars.update(tasks[digest], completed=int(chunk.get("completed") or 0))
            else:
                bars.console.print(status)
        if notes is not None and (note := notes.result()):
            bars.console.print(note, style="yellow")


def fit_warning(client: Client, model: str, *, insecure: bool) -> str | None:
    """A warning when the server's machine cannot run ``model`` (``POST /api/fit``: the
    registry manifest and the GGUF header, before the download); None when it fits or no
    estimate can be had (an older server, a Hugging Face model): the pull goes on anyway."""
    try:
        report = client.fit(model, insecure=insecure or None)
    except Exception:  # best effort: never in the way of the pull, which reports its own errors
        return None
    if isinstance(report, dict) and report.get("fits") is False:
        return f"warning: {model} will not fit this server: {report.get('verdict')}; pulling anyway"
    return None


def pull(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client_factory()
    # The estimate reads the manifest and header bytes from the registry (0.26-0.30 s for a
    # 253 MB model here): ask for it beside the pull rather than before it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        warning = pool.submit(fit_warning, client, args.model, insecure=args.insecure)
        show_progress(client.pull(args.model, insecure=args.insecure), notes=warning)
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
