"""Helpers for the runner tests: fake engine binaries and process checks."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def write_script(path: Path, body: str) -> Path:
    """An executable Python script at ``path`` (a fake llama-server)."""
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``within`` seconds pass; its last value."""
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return predicate()
        await asyncio.sleep(0.02)
