"""What the engine build can run on: ``--list-devices`` and the backend libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runner.devices import engine_backends, engine_info, parse_devices
from corral.runner.discovery import find_llama_server

MIB = 1024 * 1024

CUDA_LISTING = """\
ggml_cuda_init: found 2 CUDA devices:
  Device 0: NVIDIA H100 80GB HBM3, compute capability 9.0, VMM: yes
Available devices:
  CUDA0: NVIDIA H100 80GB HBM3 (81559 MiB, 80994 MiB free)
  CUDA1: NVIDIA L4 (22478 MiB, 22000 MiB free)
"""


def test_parse_cuda_devices() -> None:
    devices = parse_devices(CUDA_LISTING)
    assert [(d.id, d.name, d.total, d.free, d.backend) for d in devices] == [
        ("CUDA0", "NVIDIA H100 80GB HBM3", 81559 * MIB, 80994 * MIB, "cuda"),
        ("CUDA1", "NVIDIA L4", 22478 * MIB, 22000 * MIB, "cuda"),
    ]


def test_parse_cpu_only_build() -> None:
    assert parse_devices("Available devices:\n  (none)\n") == []


def test_backends_from_the_libraries_beside_the_binary(tmp_path: Path) -> None:
    for lib in ("libggml-base.so", "libggml-cpu-haswell.so", "libggml-cuda.so", "libggml.so"):
        (tmp_path / lib).write_bytes(b"")
    (tmp_path / "llama-server").write_bytes(b"")
    assert engine_backends(tmp_path / "llama-server") == ["cpu", "cuda"]


@pytest.mark.engine
def test_the_real_engine_reports_itself() -> None:
    info = engine_info(find_llama_server(None))
    assert "cpu" in info.backends and info.version != "unknown"
    for device in info.devices:  # none on the development machine (a CPU build)
        assert 0 <= device.free <= device.total
