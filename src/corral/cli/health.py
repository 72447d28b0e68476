"""``corral health``: exit 0 when the server is ready to serve, 1 otherwise.

Meant for container health checks (``HEALTHCHECK CMD corral health``): no curl needed.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["health"]


def health(args: argparse.Namespace, ctx: Context) -> int:
    """``GET /health/ready``: print its JSON; exit 0 on 200, 1 otherwise (or unreachable)."""
    ready, body = ctx.client_factory().health()
    print(json.dumps(body))
    return 0 if ready else 1
