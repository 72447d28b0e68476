"""RAM: total and available, read from the kernel.

Inside a container the cgroup limit counts, not the host's RAM: a 2 GiB container on a
64 GiB host has 2 GiB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryInfo", "MemoryProbe", "read_memory"]


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    total: int  # bytes
    available: int  # bytes a new process could use now


MemoryProbe = Callable[[], MemoryInfo]


def _meminfo(path: Path) -> MemoryInfo:
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024  # kB
    total = values.get("MemTotal", 0)
    return MemoryInfo(total=total, available=values.get("MemAvailable", values.get("MemFree", 0)))


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" means no limit


def _cgroup_limit(root: Path) -> tuple[int, int] | None:
    """(limit, usage) of this process's cgroup, v2 or v1, if it has a limit."""
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        limit = _read_int(root / limit_file)
        usage = _read_int(root / usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            return limit, usage
    return None


def read_memory(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")) -> MemoryInfo:
    """Total and available RAM, the cgroup limit taken into account (paths are for tests)."""
    host = _meminfo(proc / "meminfo")
    limited = _cgroup_limit(cgroup)
    if limited is None:
        return host
    limit, usage = limited
    return MemoryInfo(
        total=min(host.total, limit), available=min(host.available, max(limit - usage, 0))
    )
