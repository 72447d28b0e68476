"""GPUs and their memory: NVIDIA through NVML (``nvidia-ml-py``), else ``nvidia-smi``;
AMD through the amdgpu driver's sysfs files, else ``rocm-smi``.

Every source is injectable (an NVML module, a command runner, a sysfs root), so tests drive
fake inventories; a machine without GPUs, drivers or tools simply has none.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GPUInfo",
    "GPUProbe",
    "Runner",
    "read_amd",
    "read_gpus",
    "read_nvidia",
    "run_command",
]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# AMD APUs expose a small VRAM carve-out (often 512 MiB); offloading to it only slows down.
MIN_AMD_VRAM = 1024 * MIB


@dataclass(frozen=True, slots=True)
class GPUInfo:
    index: int  # per vendor, in the driver's order
    name: str
    vendor: str  # "nvidia", "amd", or "rpc" (a corral worker's memory, over llama.cpp RPC)
    total: int  # bytes of VRAM
    free: int  # bytes free now
    driver: str = ""
    id: str = ""  # UUID (NVIDIA) or PCI address (AMD)
    source: str = ""  # where it was read: nvml, nvidia-smi, sysfs, rocm-smi

    @property
    def backend(self) -> str:
        """The llama.cpp backend that drives it."""
        return {"nvidia": "cuda", "rpc": "rpc"}.get(self.vendor, "rocm")


GPUProbe = Callable[[], list[GPUInfo]]
Runner = Callable[[Sequence[str]], str | None]
"""Runs a command; its stdout, or None when the tool is missing or fails."""


def run_command(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _load_nvml() -> Any | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _from_nvml(nvml: Any) -> list[GPUInfo]:
    nvml.nvmlInit()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GPUInfo(
                    index=i,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    vendor="nvidia",
                    total=int(memory.total),
                    free=int(memory.free),
                    driver=driver,
                    id=_text(nvml.nvmlDeviceGetUUID(handle)),
                    source="nvml",
                )
            )
        return gpus
    finally:
        nvml.nvmlShutdown()


_SMI_QUERY = "index,name,memory.total,memory.free,driver_version,uuid"


def _mib(field: str) -> int | None:
    try:
        return int(float(field) * MIB)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def _from_nvidia_smi(run: Runner) -> list[GPUInfo]:
    out = run(["nvidia-smi", f"--query-gpu={_SMI_QUERY}", "--format=csv,noheader,nounits"])
    gpus: list[GPUInfo] = []
    for line in (out or "").splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or not fields[0].isdigit():
            continue
        total, free = _mib(fields[2]), _mib(fields[3])
        if total is None:
            continue
        gpus.append(
            GPUInfo(
                index=int(fields[0]),
                name=fields[1],
                vendor="nvidia",
                total=total,
                free=total if free is None else free,
                driver=fields[4],
                id=fields[5],
                source="nvidia-smi",
            )
        )
    return gpus


def read_nvidia(nvml: Any | None = None, run: Runner = run_command) -> list[GPUInfo]:
    """NVIDIA GPUs from NVML (``nvml``: the ``pynvml`` module or a fake), else nvidia-smi."""
    module = nvml if nvml is not None else _load_nvml()
    if module is not None:
        try:
            return _from_nvml(module)
        except Exception as exc:  # NVMLError_*: no driver, no library, no permission
            log.debug("NVML unavailable (%s); trying nvidia-smi", exc)
    return _from_nvidia_smi(run)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _from_sysfs(drm: Path, module: Path) -> list[GPUInfo]:
    driver = _read(module / "version") or "amdgpu"
    gpus: list[GPUInfo] = []
    cards = sorted(
        (p for p in drm.glob("card*") if p.name[4:].isdigit()), key=lambda p: int(p.name[4:])
    )
    for card in cards:
        device = card / "device"
        if _read(device / "vendor") != "0x1002":
            continue
        total = _int(_read(device / "mem_info_vram_total"))
        used = _int(_read(device / "mem_info_vram_used")) or 0
        if total is None or total < MIN_AMD_VRAM:
            continue
        name = _read(device / "product_name") or f"AMD GPU {_read(device / 'device') or '?'}"
        gpus.append(_amd(len(gpus), name, total, used, driver, "sysfs", id=device.resolve().name))
    return gpus


def _amd(
    index: int, name: str, total: int, used: int, driver: str, source: str, *, id: str = ""
) -> GPUInfo:
    return GPUInfo(
        index=index,
        name=name,
        vendor="amd",
        total=total,
        free=max(total - used, 0),
        driver=driver,
        id=id,
        source=source,
    )


def _from_rocm_smi(run: Runner) -> list[GPUInfo]:
    out = run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"])
    try:
        data = json.loads(out) if out else {}
    except ValueError:
        return []
    driver = ""
    if isinstance(data.get("system"), dict):
        driver = str(data["system"].get("Driver version", ""))
    gpus: list[GPUInfo] = []
    for key in sorted((k for k in data if k.startswith("card")), key=lambda k: k[4:].zfill(4)):
        card = data[key]
        total = _int(str(card.get("VRAM Total Memory (B)", "")))
        used = _int(str(card.get("VRAM Total Used Memory (B)", ""))) or 0
        if total is None or total < MIN_AMD_VRAM:
            continue
        name = str(card.get("Card Series") or card.get("Card series") or card.get("Card model"))
        gpus.append(_amd(len(gpus), name, total, used, driver, "rocm-smi"))
    return gpus


def read_amd(
    drm: Path = Path("/sys/class/drm"),
    module: Path = Path("/sys/module/amdgpu"),
    run: Runner = run_command,
) -> list[GPUInfo]:
    """AMD GPUs from the amdgpu driver's sysfs files, else ``rocm-smi``."""
    return _from_sysfs(drm, module) or _from_rocm_smi(run)


def read_gpus() -> list[GPUInfo]:
    """Every GPU this machine has, NVIDIA first."""
    return read_nvidia() + read_amd()
