from pathlib import Path

from corral.hardware import read_memory

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
