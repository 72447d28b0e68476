import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

from corral.hardware import GPUInfo, Hardware, MemoryInfo, read_cpu, read_memory
from corral.hardware.gpu import read_amd, read_nvidia

MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_host_memory_without_a_cgroup_limit(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"meminfo": MEMINFO})
    cgroup = write(tmp_path / "cg", {"memory.max": "max\n", "memory.current": "123\n"})
    info = read_memory(proc, cgroup)
    assert (info.total, info.available) == (16_000_000 * 1024, 8_000_000 * 1024)


def test_cgroup_v2_limit_wins_in_a_container(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"meminfo": MEMINFO})
    gib = 1024**3
    cgroup = write(
        tmp_path / "cg", {"memory.max": f"{2 * gib}\n", "memory.current": f"{gib // 2}\n"}
    )
    info = read_memory(proc, cgroup)
    assert (info.total, info.available) == (2 * gib, gib + gib // 2)


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"meminfo": MEMINFO})
    cgroup = write(
        tmp_path / "cg",
        {"memory/memory.limit_in_bytes": "1073741824", "memory/memory.usage_in_bytes": "0"},
    )
    assert read_memory(proc, cgroup).available == 1073741824


def test_this_machine_reports_something() -> None:
    info = read_memory()
    assert 0 < info.available <= info.total


# -- CPU -------------------------------------------------------------------------------------

X86_CPUINFO = "".join(
    f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n"
    f"physical id\t: {i // 4}\ncore id\t\t: {i % 4 // 2}\n"
    "flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx f16c fma avx2 avx512f avx512bw\n\n"
    for i in range(8)
)  # 2 sockets x 2 cores x 2 threads
ARM_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp sve i8mm bf16\n"
    "CPU part\t: 0xd40\n\n"
    for i in range(4)
)


def test_cpu_cores_threads_and_flags(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"cpuinfo": X86_CPUINFO})
    cpu = read_cpu(proc, tmp_path / "no-cgroup", affinity=8)
    assert (cpu.model, cpu.cores, cpu.threads, cpu.usable) == (
        "Intel(R) Xeon(R) Gold 6338",
        4,
        8,
        8,
    )
    assert cpu.flags == ("sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2",
                         "avx512f", "avx512bw")  # fmt: skip


def test_arm_cpu_features(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"cpuinfo": ARM_CPUINFO})
    cpu = read_cpu(proc, tmp_path / "no-cgroup", affinity=4)
    assert cpu.threads == 4 and cpu.cores == 4  # no core ids: one thread per core
    assert {"asimd", "asimddp", "sve", "i8mm", "bf16"} <= set(cpu.flags)


def test_cgroup_cpu_quota_limits_usable_cpus(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"cpuinfo": X86_CPUINFO})
    v2 = write(tmp_path / "v2", {"cpu.max": "150000 100000\n"})
    assert read_cpu(proc, v2, affinity=8).usable == 1.5
    unlimited = write(tmp_path / "v2max", {"cpu.max": "max 100000\n"})
    assert read_cpu(proc, unlimited, affinity=6).usable == 6
    v1 = write(
        tmp_path / "v1", {"cpu/cpu.cfs_quota_us": "200000", "cpu/cpu.cfs_period_us": "100000"}
    )
    assert read_cpu(proc, v1, affinity=8).usable == 2


# -- GPUs ------------------------------------------------------------------------------------


class FakeNVML:
    """The part of pynvml's API corral uses, over a list of (name, total, free)."""

    def __init__(self, gpus: list[tuple[str, int, int]], fail: bool = False) -> None:
        self.gpus, self.fail, self.shut = gpus, fail, 0

    def nvmlInit(self) -> None:
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shut += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"  # older bindings return bytes

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return self.gpus[h][0]

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-{h}"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        _, total, free = self.gpus[h]
        return SimpleNamespace(total=total, free=free, used=total - free)


GIB = 1024**3
SMI = (
    "0, NVIDIA GeForce RTX 3070, 8192, 7800, 535.104.05, GPU-aaa\n"
    "1, NVIDIA A10, 23028, [N/A], 535.104.05, GPU-bbb\n"
)


def runner(outputs: dict[str, str]) -> Callable[[Sequence[str]], str | None]:
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> str | None:
        calls.append(list(argv))
        return outputs.get(argv[0])

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_nvidia_through_nvml() -> None:
    nvml = FakeNVML(
        [("NVIDIA H100 80GB HBM3", 80 * GIB, 79 * GIB), ("NVIDIA L4", 24 * GIB, 20 * GIB)]
    )
    gpus = read_nvidia(nvml, run=runner({}))
    assert [(g.index, g.name, g.total, g.free) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 80 * GIB, 79 * GIB),
        (1, "NVIDIA L4", 24 * GIB, 20 * GIB),
    ]
    assert {(g.driver, g.vendor, g.backend, g.source) for g in gpus} == {
        ("550.54.15", "nvidia", "cuda", "nvml")
    }
    assert nvml.shut == 1


def test_nvidia_falls_back_to_nvidia_smi() -> None:
    run = runner({"nvidia-smi": SMI})
    gpus = read_nvidia(FakeNVML([], fail=True), run=run)
    assert [(g.index, g.name, g.total, g.free, g.driver) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 3070", 8192 * 1024**2, 7800 * 1024**2, "535.104.05"),
        (1, "NVIDIA A10", 23028 * 1024**2, 23028 * 1024**2, "535.104.05"),  # N/A free: all
    ]
    assert gpus[0].source == "nvidia-smi"
    assert run.calls[0][1].startswith("--query-gpu=index,name,memory.total,memory.free")  # type: ignore[attr-defined]


def test_no_nvidia_anything_means_no_gpu() -> None:
    assert read_nvidia(FakeNVML([], fail=True), run=runner({})) == []
    assert read_nvidia(FakeNVML([]), run=runner({"nvidia-smi": SMI})) == []  # NVML said none


def amd_card(root: Path, n: int, total: int, used: int, name: str | None = None) -> None:
    files = {
        f"card{n}/device/vendor": "0x1002\n",
        f"card{n}/device/device": "0x744c\n",
        f"card{n}/device/mem_info_vram_total": f"{total}\n",
        f"card{n}/device/mem_info_vram_used": f"{used}\n",
    }
    if name:
        files[f"card{n}/device/product_name"] = name
    write(root, files)


def test_amd_from_sysfs(tmp_path: Path) -> None:
    drm = tmp_path / "drm"
    amd_card(drm, 0, 512 * 1024**2, 100, "AMD Radeon Graphics")  # an APU's carve-out: skipped
    amd_card(drm, 1, 24 * GIB, 4 * GIB)
    write(drm, {"card2/device/vendor": "0x10de\n", "card1-DP-1/status": "connected\n"})
    module = write(tmp_path / "amdgpu", {"version": "6.7.0\n"})
    [card] = read_amd(drm, module, run=runner({}))
    assert (card.index, card.name, card.total, card.free) == (
        0,
        "AMD GPU 0x744c",
        24 * GIB,
        20 * GIB,
    )
    assert (card.vendor, card.backend, card.driver, card.source) == (
        "amd",
        "rocm",
        "6.7.0",
        "sysfs",
    )


def test_amd_falls_back_to_rocm_smi(tmp_path: Path) -> None:
    smi = {
        "card0": {
            "Card Series": "Radeon RX 7900 XTX",
            "VRAM Total Memory (B)": str(24 * GIB),
            "VRAM Total Used Memory (B)": str(GIB),
        },
        "system": {"Driver version": "6.3.6"},
    }
    [card] = read_amd(tmp_path / "nothing", tmp_path, run=runner({"rocm-smi": json.dumps(smi)}))
    assert (card.name, card.total, card.free, card.driver) == (
        "Radeon RX 7900 XTX",
        24 * GIB,
        23 * GIB,
        "6.3.6",
    )
    assert read_amd(tmp_path / "nothing", tmp_path, run=runner({"rocm-smi": "oops"})) == []


def test_hardware_probe_is_injectable() -> None:
    fake = GPUInfo(0, "Fake", "nvidia", 8 * GIB, 8 * GIB)
    hw = Hardware(gpus=lambda: [fake], memory=lambda: MemoryInfo(4 * GIB, 2 * GIB))
    inv = hw.inventory()
    assert inv.gpus == (fake,) and inv.memory.total == 4 * GIB
    assert inv.to_dict()["gpus"][0]["backend"] == "cuda"


def test_this_machines_inventory_parses() -> None:
    inv = Hardware().inventory()
    assert inv.cpu.threads == len(Path("/proc/cpuinfo").read_text().split("processor")) - 1
    assert 1 <= inv.cpu.cores <= inv.cpu.threads and 0 < inv.cpu.usable <= inv.cpu.threads
    assert inv.cpu.model and inv.cpu.architecture
    assert 0 < inv.memory.available <= inv.memory.total
    for g in inv.gpus:  # none on the development machine; a GPU runner lists its own
        assert 0 <= g.free <= g.total and g.name
    json.dumps(inv.to_dict())  # what /api/info sends
