"""Content-addressed blobs: ``blobs/sha256-<hex>``, exactly as Ollama lays them out.

A blob becomes visible only after its digest was verified (temp name, fsync, rename).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from corral.errors import BadRequest, CorruptBlob
from corral.store.atomic import fsync_dir

__all__ = ["BlobStore", "parse_digest", "sha256_file"]

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_CHUNK = 1 << 20


def parse_digest(digest: str) -> str:
    """``sha256:<hex>`` or ``sha256-<hex>`` -> ``sha256:<hex>``; anything else is a 400."""
    match = _DIGEST.match(digest or "")
    if not match:
        raise BadRequest(f'invalid digest "{digest}": expected sha256:<64 lowercase hex digits>')
    return f"sha256:{match.group(1)}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / parse_digest(digest).replace(":", "-")

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def _tempfile(self) -> tuple[int, Path]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-", suffix=".tmp")
        return fd, Path(name)

    def _publish(self, tmp: Path, digest: str) -> Path:
        target = self.path(digest)
        os.replace(tmp, target)
        fsync_dir(self.root)
        return target

    def write_chunks(self, chunks: Iterable[bytes], expected: str | None = None) -> str:
        """Store a stream of bytes; if ``expected`` is given, a mismatch stores nothing."""
        want = parse_digest(expected) if expected else None
        fd, tmp = self._tempfile()
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            digest = f"sha256:{h.hexdigest()}"
            if want and digest != want:
                raise CorruptBlob(f"digest mismatch: expected {want}, got {digest}")
            self._publish(tmp, digest)
            return digest
        finally:
            tmp.unlink(missing_ok=True)

    def write_bytes(self, data: bytes) -> str:
        return self.write_chunks([data])

    def import_file(self, source: Path) -> str:
        """Add a file by hard link when possible (no copy of a large GGUF), else by copy."""
        digest = sha256_file(source)
        if self.exists(digest):
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{os.getpid()}-{digest[7:19]}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
                with tmp.open("rb") as f:
                    os.fsync(f.fileno())
            self._publish(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def digests(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {
            f"sha256:{p.name[7:]}"
            for p in self.root.iterdir()
            if p.name.startswith("sha256-") and len(p.name) == 71
        }

    def remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)
