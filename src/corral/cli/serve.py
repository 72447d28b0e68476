"""``corral serve``: run the HTTP server in the foreground."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["serve", "settings_epilog"]


def settings_epilog() -> str:
    """The environment-variable table shown by ``corral serve --help``."""
    from corral.config import settings_table

    return settings_table()


def serve(args: argparse.Namespace, ctx: Context) -> int:
    from pydantic import ValidationError

    from corral.config import Settings

    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("provision", getattr(args, "provision", None)),
            ("pull", getattr(args, "pull", None)),
            ("replicas", getattr(args, "replicas", None)),
        )
        if value
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"Error: invalid settings: {exc}", file=sys.stderr)
        return 1
    from corral.provision import ProvisionError, load_plan

    try:  # up front: a bad provisioning file stops the start, naming its line and field
        load_plan(settings.provision, settings.pull)
    except ProvisionError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    from corral.api.server import run_server

    run_server(settings)
    return 0
