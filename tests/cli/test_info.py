"""``corral info`` against a fake server, and on this machine when no server runs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from corral.cli.main import main
from corral.client import Client
from tests.cli.fakes import FakeServer

GIB = 1024**3
INFO = {
    "version": "0.1.0",
    "hardware": {
        "cpu": {
            "model": "AMD EPYC 9654",
            "cores": 96,
            "threads": 192,
            "usable": 16.0,
            "flags": ["avx2", "avx512f"],
            "architecture": "x86_64",
        },
        "memory": {"total": 64 * GIB, "available": 48 * GIB},
        "gpus": [
            {
                "index": 0,
                "name": "NVIDIA H100 80GB HBM3",
                "vendor": "nvidia",
                "total": 80 * GIB,
                "free": 79 * GIB,
                "driver": "550.54.15",
                "id": "GPU-1",
                "source": "nvml",
                "backend": "cuda",
            }
        ],
    },
    "engine": {
        "path": "/opt/llama/llama-server",
        "version": "6000 (abcdef0)",
        "backends": ["cpu", "cuda"],
        "devices": [{"id": "CUDA0", "name": "NVIDIA H100", "total": 80 * GIB, "free": 79 * GIB}],
    },
    "store": {"path": "/data/models", "free": 100 * GIB, "total": 200 * GIB},
    "settings": {"host": "0.0.0.0:11434", "gpu_overhead": 0, "origins": ["a", "b"]},
}


def test_info_prints_the_servers_machine(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/api/info", INFO)
    assert corral("info") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "corral 0.1.0"
    assert "CPU       AMD EPYC 9654, 96 cores, 192 threads (16.0 usable), x86_64" in lines
    assert "          flags: avx2 avx512f" in lines
    assert "RAM       64.0 GiB total, 48.0 GiB available" in lines
    assert (
        "GPUs      nvidia 0: NVIDIA H100 80GB HBM3, 79.0 GiB free of 80.0 GiB, "
        "driver 550.54.15 (nvml)"
    ) in lines
    assert "Engine    /opt/llama/llama-server" in lines
    assert "          backends: cpu, cuda" in lines
    assert "          devices: CUDA0 NVIDIA H100 (80.0 GiB, 79.0 GiB free)" in lines
    assert "Store     /data/models, 100.0 GiB free of 200.0 GiB" in lines
    assert "Settings  CORRAL_HOST=0.0.0.0:11434" in lines
    assert "          CORRAL_ORIGINS=a,b" in lines
    assert err == "(server at http://corral.test)\n"


def test_info_json(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/api/info", INFO)
    assert corral("info", "--json") == 0
    assert json.loads(capsys.readouterr().out) == INFO


def test_info_without_a_server_describes_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORRAL_HOST", raising=False)
    client = Client("http://127.0.0.1:9")  # nothing listens on the discard port
    assert main(["info", "--json"], client_factory=lambda: client, stdin=io.StringIO()) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["hardware"]["cpu"]["threads"] >= 1
    assert data["hardware"]["memory"]["total"] > 0
    assert "no server running" in err
