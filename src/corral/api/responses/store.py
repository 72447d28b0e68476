"""Stored responses for ``previous_response_id``: one JSON file per id under a directory.

Bounded to ``max_count`` files (oldest by mtime evicted on write); a corrupt file reads
as absent rather than failing the request.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from corral.store.atomic import write_atomic

__all__ = ["ResponseStore"]

_ID = re.compile(r"^resp_[A-Za-z0-9]{1,64}$")


class ResponseStore:
    def __init__(self, root: Path, max_count: int = 1000) -> None:
        self.root = root
        self.max_count = max_count

    def _path(self, response_id: str) -> Path | None:
        # ids become file names: anything else is simply unknown, never a path
        return self.root / f"{response_id}.json" if _ID.match(response_id) else None

    def put(self, response_id: str, record: dict[str, Any]) -> None:
        path = self._path(response_id)
        if path is None:
            raise ValueError(f"not a response id: {response_id!r}")
        write_atomic(path, json.dumps(record).encode())
        self._evict()

    def get(self, response_id: str) -> dict[str, Any] | None:
        path = self._path(response_id)
        if path is None:
            return None
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def delete(self, response_id: str) -> bool:
        path = self._path(response_id)
        if path is None or not path.exists():
            return False
        path.unlink(missing_ok=True)
        return True

    def _evict(self) -> None:
        files = sorted(self.root.glob("resp_*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.max_count)]:
            old.unlink(missing_ok=True)
