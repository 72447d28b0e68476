"""``corral cp``, ``corral rm`` and ``corral stop``: what ``ollama`` prints for each.

Standard library only, like ``corral list``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from corral.cli.main import CommandError
from corral.client import ClientError, ServerUnreachable

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["copy", "remove", "stop"]


def copy(args: argparse.Namespace, ctx: Context) -> int:
    """``POST /api/copy``."""
    ctx.client_factory().copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def remove(args: argparse.Namespace, ctx: Context) -> int:
    """Unload each model if it is loaded (as ``ollama rm`` does), then ``DELETE /api/delete``.

    Stops at the first model that cannot be deleted; those before it stay deleted.
    """
    client = ctx.client_factory()
    for name in args.models:
        try:
            client.unload(name)
        except ServerUnreachable:
            raise
        except ClientError:  # not loaded, or not there: the delete says which
            pass
        client.delete(name)
        print(f"deleted '{name}'")
    return 0


def stop(args: argparse.Namespace, ctx: Context) -> int:
    """``POST /api/generate {model, keep_alive: 0}``: unload now; silent when it worked."""
    try:
        ctx.client_factory().unload(args.model)
    except ServerUnreachable:
        raise
    except ClientError as exc:
        if exc.status_code == 404 or "not found" in exc.message:
            raise CommandError(f'couldn\'t find model "{args.model}" to stop') from exc
        raise
    return 0
