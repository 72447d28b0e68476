"""``GET /api/info``, ``POST /api/fit`` and ``/api/show``'s ``fit``, on fake hardware."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.core.fitreport import assess_fit
from corral.gguf import read_gguf
from corral.hardware import GPUInfo, Hardware, MemoryInfo
from corral.runner.protocol import LoadSpec
from tests.fakes import FakeFactory

GIB = 1024**3
EIGHT_GB = GPUInfo(0, "Fake RTX", "nvidia", 8 * GIB, 7 * GIB, "550.0", "GPU-0", "nvml")
MEMORY = MemoryInfo(total=16 * GIB, available=12 * GIB)


@pytest.fixture
def gpu_client(seeded_models: Path, tmp_path: Path) -> Iterator[TestClient]:
    hardware = Hardware(gpus=lambda: [EIGHT_GB], memory=lambda: MEMORY)
    settings = Settings(home=tmp_path / "home", models=seeded_models, gpu_overhead=GIB)
    app = create_app(settings, engine_factory=FakeFactory(), hardware=hardware)
    with TestClient(app) as client:
        yield client


def test_info_reports_the_injected_hardware_and_settings(gpu_client: TestClient) -> None:
    info = gpu_client.get("/api/info").json()
    assert info["hardware"]["gpus"] == [
        {
            "index": 0,
            "name": "Fake RTX",
            "vendor": "nvidia",
            "total": 8 * GIB,
            "free": 7 * GIB,
            "driver": "550.0",
            "id": "GPU-0",
            "source": "nvml",
            "backend": "cuda",
        }
    ]
    assert info["hardware"]["memory"] == {"total": 16 * GIB, "available": 12 * GIB}
    assert info["hardware"]["cpu"]["threads"] >= 1
    assert info["settings"]["gpu_overhead"] == GIB
    assert info["store"]["free"] > 0 and info["store"]["path"].endswith("models")
    engine = info["engine"]  # the real engine's, or why there is none
    assert "cpu" in engine["backends"] if engine["path"] else engine["error"]


def test_fit_of_a_local_model(gpu_client: TestClient, smollm2_path: Path) -> None:
    report = gpu_client.post(
        "/api/fit", json={"model": "smollm2:135m", "num_ctx": 2048, "num_parallel": 2}
    ).json()
    spec = LoadSpec(smollm2_path, num_ctx=2048, num_parallel=2)
    expected = assess_fit(
        read_gguf(smollm2_path),
        smollm2_path.stat().st_size,
        spec,
        gpus=[EIGHT_GB],
        memory=MEMORY,
        overhead=GIB,
        model="smollm2:135m",
    ).to_dict()
    assert report == expected
    assert report["source"] == "local" and report["num_ctx"] == 2048
    assert report["layers"] == {"total": 31, "gpu": 31} and report["vram"]["fits"]
    assert report["verdict"] == "fits: all 31 layers in VRAM (Fake RTX)"
    assert report["fits"] is True


def test_show_carries_the_estimate(gpu_client: TestClient) -> None:
    shown = gpu_client.post("/api/show", json={"model": "smollm2:135m"}).json()
    fit = shown["fit"]
    assert fit["num_ctx"] == 4096 and fit["layers"]["gpu"] == 31
    assert fit["estimate"]["total"] == sum(
        fit["estimate"][k] for k in ("weights", "kv_cache", "compute")
    )


def test_fit_errors(gpu_client: TestClient) -> None:
    too_big = gpu_client.post("/api/fit", json={"model": "smollm2:135m", "num_ctx": 10**7})
    assert too_big.status_code == 400 and "num_ctx" in too_big.json()["error"]
    assert gpu_client.post("/api/fit", json={}).status_code == 400
    # not in the store and its registry (127.0.0.1:9, nothing listens) cannot be reached
    gone = gpu_client.post("/api/fit", json={"model": "127.0.0.1:9/library/none:1"})
    assert gone.status_code == 404
    assert gone.json()["error"].startswith(
        'model "127.0.0.1:9/library/none:1" not found locally, and its registry failed: '
    )
