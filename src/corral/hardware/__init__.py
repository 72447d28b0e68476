"""What this machine has: CPU, RAM (cgroup-aware) and GPUs (NVIDIA, AMD), read from the
kernel and the vendors' interfaces, each behind an injectable probe.

- :mod:`corral.hardware.memory`: ``read_memory`` (``/proc/meminfo`` and the cgroup limit);
- :mod:`corral.hardware.cpu`: ``read_cpu`` (model, cores, threads, AVX2/AVX-512 ...);
- :mod:`corral.hardware.gpu`: ``read_gpus`` (NVML / nvidia-smi, amdgpu sysfs / rocm-smi);
- :mod:`corral.hardware.inventory`: ``Hardware`` (the probe the server holds) and ``Inventory``.
"""

from corral.hardware.cpu import CPUInfo, read_cpu
from corral.hardware.gpu import GPUInfo, GPUProbe, read_gpus
from corral.hardware.inventory import Hardware, Inventory
from corral.hardware.memory import MemoryInfo, MemoryProbe, read_memory

__all__ = [
    "CPUInfo",
    "GPUInfo",
    "GPUProbe",
    "Hardware",
    "Inventory",
    "MemoryInfo",
    "MemoryProbe",
    "read_cpu",
    "read_gpus",
    "read_memory",
]
