"""The CPU: model, physical cores, hardware threads, what this process may use, and the
instruction-set extensions that decide which llama.cpp kernels run (AVX2, AVX-512, ...).

Read from ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``); inside a container the CPU
affinity mask and the cgroup quota (``cpu.max``) say how many of the threads are ours.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INTERESTING_FLAGS", "CPUInfo", "read_cpu"]

# The extensions ggml's CPU backend picks kernels by, in the order people ask about them.
INTERESTING_FLAGS = (
    "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2",
    "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
    "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16", "fphp", "asimdhp",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CPUInfo:
    model: str
    cores: int  # physical cores
    threads: int  # hardware threads (logical CPUs)
    usable: float  # CPUs this process may use: affinity mask and cgroup quota
    flags: tuple[str, ...]  # the INTERESTING_FLAGS this CPU has
    architecture: str = ""


def _blocks(text: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per logical CPU (blank lines separate them)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _cgroup_cpus(cgroup: Path) -> float | None:
    """CPUs allowed by a cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), if any."""
    try:
        parts = (cgroup / "cpu.max").read_text().split()  # "max 100000" or "150000 100000"
        if len(parts) == 2 and parts[0] != "max":
            return int(parts[0]) / int(parts[1])
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu/cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu/cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def read_cpu(
    proc: Path = Path("/proc"),
    cgroup: Path = Path("/sys/fs/cgroup"),
    affinity: int | None = None,
) -> CPUInfo:
    """What ``/proc/cpuinfo`` says (paths and affinity are for tests)."""
    try:
        blocks = _blocks((proc / "cpuinfo").read_text())
    except OSError:
        blocks = []
    processors = [b for b in blocks if "processor" in b] or blocks
    threads = len(processors) or os.cpu_count() or 1
    first = processors[0] if processors else {}
    model = (
        first.get("model name")
        or first.get("Model")
        or first.get("Hardware")
        or first.get("cpu model")
        or platform.processor()
        or "unknown"
    )
    have = set((first.get("flags") or first.get("Features") or "").split())
    if "pni" in have:  # x86 names SSE3 "pni" (Prescott New Instructions)
        have.add("sse3")
    flags = tuple(f for f in INTERESTING_FLAGS if f in have)
    cores_seen = {(b.get("physical id", "0"), b["core id"]) for b in processors if "core id" in b}
    cores = len(cores_seen) or threads
    usable: float = affinity if affinity is not None else (_affinity() or threads)
    quota = _cgroup_cpus(cgroup)
    if quota is not None:
        usable = min(usable, quota)
    return CPUInfo(
        model=model,
        cores=cores,
        threads=threads,
        usable=round(usable, 2),
        flags=flags,
        architecture=platform.machine(),
    )
