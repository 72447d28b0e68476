"""What corral learnt about running one engine binary on this CPU, kept in CORRAL_HOME.

After an engine died by a signal at load and a retry with a fallback flag set worked (see
:mod:`corral.runner.crashes`), the flags are remembered for that binary on that CPU, so later
loads start with them at once instead of crashing first. The key names the binary (path,
size, mtime) and the CPU (model and instruction-set flags): a rebuilt engine, or the same
CORRAL_HOME on another machine, is tried plainly again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corral.hardware.cpu import CPUInfo
from corral.store.atomic import write_atomic

__all__ = ["COMPAT_FILE", "CompatRecord", "EngineCompat", "cpu_fingerprint"]

log = logging.getLogger(__name__)

COMPAT_FILE = "engine-compat.json"


@dataclass(slots=True)
class CompatRecord:
    binary: str
    cpu: str
    extra_args: list[str] = field(default_factory=list)
    reason: str = ""  # why extra_args are in force: the crash they avoid
    updated: float = 0.0


def cpu_fingerprint(cpu: CPUInfo) -> str:
    """What identifies this CPU for :class:`EngineCompat`: its model and its flags."""
    return f"{cpu.model}|{' '.join(cpu.flags)}"


def _fingerprint(binary: Path, cpu: str) -> str:
    try:
        st = binary.resolve().stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "?"
    return f"{binary.resolve()}|{stamp}|{cpu}"


class EngineCompat:
    """The remembered flags per (binary, CPU). Safe to share between loads; the file is
    rewritten atomically, and an unreadable one counts as empty (nothing is lost but time)."""

    def __init__(self, path: Path | None, cpu: str) -> None:
        self.path = path
        self.cpu = cpu
        self._lock = threading.Lock()
        self._records: dict[str, CompatRecord] | None = None

    def _load(self) -> dict[str, CompatRecord]:
        if self._records is None:
            self._records = {}
            if self.path is not None:
                with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                    raw = json.loads(self.path.read_text())
                    self._records = {k: CompatRecord(**v) for k, v in raw.items()}
        return self._records

    def _save(self) -> None:
        if self.path is None or self._records is None:
            return
        data = {k: asdict(v) for k, v in self._records.items()}
        try:
            write_atomic(self.path, json.dumps(data, indent=2).encode())
        except OSError as exc:  # a read-only home: remembered for this process only
            log.warning("cannot write %s: %s", self.path, exc)

    def get(self, binary: Path) -> CompatRecord | None:
        with self._lock:
            return self._load().get(_fingerprint(binary, self.cpu))

    def extra_args(self, binary: Path) -> list[str]:
        record = self.get(binary)
        return list(record.extra_args) if record else []

    def remember(self, binary: Path, extra_args: list[str], reason: str) -> None:
        """Start ``binary`` with ``extra_args`` from now on (``reason``: the crash they avoid)."""
        key = _fingerprint(binary, self.cpu)
        record = CompatRecord(str(binary.resolve()), self.cpu, list(extra_args), reason)
        record.updated = time.time()
        with self._lock:
            self._load()[key] = record
            self._save()

    def forget(self, binary: Path) -> None:
        """Start ``binary`` plainly again (its fallback stopped helping)."""
        with self._lock:
            if self._load().pop(_fingerprint(binary, self.cpu), None) is not None:
                self._save()

    def describe(self, binary: Path) -> dict[str, Any] | None:
        """For ``corral info``: the fallback in force for ``binary``, if any."""
        record = self.get(binary)
        if record is None or not record.extra_args:
            return None
        return {"flags": record.extra_args, "reason": record.reason, "since": record.updated}
