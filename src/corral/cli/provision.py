"""``corral provision FILE``: provision once into the store, without a server, and exit.

For init containers and for baking models into an image at build time. Exit status 0 when
every required model is there, 1 otherwise (the file's errors name their line and field).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.provision import Provisioner, ProvisionPlan

__all__ = ["provision"]


class _Printer:
    """One line per state change, and pull progress every 10 percent."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown: dict[str, tuple[str, int]] = {}

    def __call__(self, provisioner: Provisioner) -> None:
        for status in provisioner.status.values():
            tenth = status.completed * 10 // status.total if status.total else -1
            key = (status.state, tenth if status.state == "pulling" else -1)
            if self.shown.get(status.name) == key or status.state in ("pending", "checking"):
                continue
            self.shown[status.name] = key
            if status.state == "done":
                line = f"{status.action} ({status.seconds:.2f} s)"
            elif status.state == "failed":
                line = f"FAILED: {status.error}"
            elif status.state == "pulling" and status.total:
                line = f"pulling {status.completed * 100 // status.total}%"
            else:
                line = status.state
            print(f"{status.name}: {line}", file=self.out, flush=True)


def _describe(plan: ProvisionPlan) -> list[str]:
    lines = []
    for entry in plan.ordered():
        flags = [f for f in ("preload", "optional", "insecure", "update") if getattr(entry, f)]
        extra = f" [{', '.join(flags)}]" if flags else ""
        what = "create" if entry.kind == "create" else "pull"
        lines.append(f"{what} {entry.name}{extra}  ({entry.where})")
    return lines


def provision(args: argparse.Namespace, ctx: Context) -> int:
    import logging

    from pydantic import ValidationError

    from corral.cli.main import CommandError
    from corral.config import Settings
    from corral.provision import (
        STATE_FILE,
        Provisioner,
        ProvisionError,
        load_plan,
        offline_backend,
    )

    try:
        settings = Settings()
    except ValidationError as exc:
        raise CommandError(f"invalid settings: {exc}") from None
    names = [n for n in (args.pull or "").split(",") if n.strip()]
    if not args.file and not names:
        raise CommandError("name a provisioning FILE, or models with --pull")
    try:
        plan = load_plan(Path(args.file) if args.file else None, names)
    except ProvisionError as exc:
        raise CommandError(exc.message) from None
    if args.check:
        print("\n".join(_describe(plan)) or "nothing to provision")
        return 0
    if not plan:
        print("nothing to provision")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    provisioner = Provisioner(
        plan,
        offline_backend(settings),
        state_file=settings.models_dir / STATE_FILE,
        listener=_Printer(sys.stdout),
    )
    ok = asyncio.run(provisioner.run())
    failed = [s for s in provisioner.failed]
    summary = f"provisioned {len(plan.models) - len(failed)} of {len(plan.models)} models"
    print(f"{summary} in {provisioner.seconds:.2f} s into {settings.models_dir}")
    if not ok:
        names_failed = ", ".join(s.name for s in failed if s.required)
        print(f"Error: required models failed: {names_failed}", file=sys.stderr)
        return 1
    return 0
