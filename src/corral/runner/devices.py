"""What the engine build can run on: its ggml backends and the devices it sees.

``llama-server --list-devices`` prints one line per device it can offload to, e.g.
``  CUDA0: NVIDIA H100 80GB HBM3 (81559 MiB, 80994 MiB free)``, and ``(none)`` for a CPU-only
build; the backends are the ``libggml-<name>.so`` libraries shipped beside the binary (or
the build's lib directory).
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from corral.runner.discovery import engine_output, engine_version

__all__ = [
    "EngineDevice",
    "EngineInfo",
    "device_backends",
    "engine_backends",
    "engine_cpu_features",
    "engine_devices",
    "engine_info",
    "parse_cpu_features",
    "parse_devices",
]

MIB = 1024 * 1024
_DEVICE = re.compile(r"^\s*([A-Za-z]+\d*):\s*(.*?)\s*\((\d+) MiB,\s*(\d+) MiB free\)\s*$")
_BACKEND_LIB = re.compile(r"^libggml-([a-z0-9]+)(?:-[a-z0-9_]+)?\.(?:so|dylib|dll)")
_NOT_BACKENDS = {"base"}


@dataclass(frozen=True, slots=True)
class EngineDevice:
    id: str  # CUDA0, ROCm0, Vulkan0, Metal ...
    name: str
    total: int  # bytes
    free: int

    @property
    def backend(self) -> str:
        return re.sub(r"\d+$", "", self.id).lower()


@dataclass(frozen=True, slots=True)
class EngineInfo:
    path: Path
    version: str
    backends: tuple[str, ...]
    devices: tuple[EngineDevice, ...]


def parse_devices(output: str) -> list[EngineDevice]:
    devices = []
    for line in output.splitlines():
        match = _DEVICE.match(line)
        if match:
            dev_id, name, total, free = match.groups()
            devices.append(EngineDevice(dev_id, name, int(total) * MIB, int(free) * MIB))
    return devices


def engine_devices(path: Path) -> list[EngineDevice]:
    """``--list-devices``: the GPUs (and other accelerators) this build can offload to."""
    output = engine_output(path, "--list-devices", timeout=60)
    return parse_devices(output) if output is not None else []


def engine_backends(path: Path) -> list[str]:
    """ggml backends shipped with the binary: ``cpu``, ``cuda``, ``hip``, ``vulkan`` ..."""
    found: set[str] = set()
    for folder in {path.resolve().parent, path.resolve().parent.parent / "lib"}:
        if not folder.is_dir():
            continue
        for lib in folder.iterdir():
            match = _BACKEND_LIB.match(lib.name)
            if match and match.group(1) not in _NOT_BACKENDS:
                found.add(match.group(1))
    return sorted(found)


@functools.cache
def device_backends(path: Path) -> frozenset[str]:
    """Backends of the devices this build can offload to (``cuda``, ``rocm``, ``vulkan``);
    empty for a CPU-only build. Cached per binary: it starts the engine once."""
    return frozenset(d.backend for d in engine_devices(path))


_SYSTEM_INFO = re.compile(r"system_info:.*?\|\s*CPU\s*:(?P<cpu>.*)$", re.MULTILINE)
_FEATURE = re.compile(r"([A-Z0-9_]+)\s*=\s*1\b")


def parse_cpu_features(output: str) -> list[str]:
    """The features of llama-server's ``system_info`` line: ``CPU : SSE3 = 1 | AVX2 = 1 |``."""
    match = _SYSTEM_INFO.search(output)
    return _FEATURE.findall(match.group("cpu")) if match else []


def engine_cpu_features(path: Path) -> list[str]:
    """The CPU features the build's CPU backend was compiled for and uses (``AVX2``,
    ``AVX512``, ``AMX_INT8``, ``REPACK`` ...). llama-server prints them at verbosity 4 before
    it loads a model, so a model path that cannot exist makes it say them and exit (~20 ms)."""
    try:
        proc = subprocess.run(
            [str(path), "-lv", "4", "--port", "0", "-m", "/nonexistent/corral-probe.gguf"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_cpu_features(proc.stdout + proc.stderr)


def engine_info(path: Path) -> EngineInfo:
    devices = engine_devices(path)
    backends = {*engine_backends(path), *(d.backend for d in devices), "cpu"}
    return EngineInfo(
        path=path,
        version=engine_version(path),
        backends=tuple(sorted(backends)),
        devices=tuple(devices),
    )
