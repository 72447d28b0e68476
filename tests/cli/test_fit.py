"""``corral fit`` against a fake server; the pull warning."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.cli.fakes import FakeServer, ndjson

GIB = 1024**3


def report(fits: bool = True, gpu_layers: int = 19) -> dict[str, Any]:
    return {
        "model": "llama3:8b",
        "source": "registry",
        "file_size": int(4.6 * GIB),
        "num_ctx": 8192,
        "num_parallel": 2,
        "estimate": {
            "weights": int(4.6 * GIB),
            "kv_cache": 2 * GIB,
            "compute": GIB // 2,
            "total": int(7.1 * GIB),
        },
        "layers": {"total": 33, "gpu": gpu_layers},
        "vram": {
            "gpus": [
                {
                    "name": "RTX 3070",
                    "free": 7 * GIB,
                    "total": 8 * GIB,
                    "layers": gpu_layers,
                    "needed": 6 * GIB,
                }
            ],
            "overhead": GIB,
            "needed": 6 * GIB,
            "fits": gpu_layers == 33,
        },
        "ram": {"total": 16 * GIB, "available": 2 * GIB, "needed": 3 * GIB, "fits": fits},
        "fits": fits,
        "verdict": "does not fit: needs 3.00 GiB of RAM besides the GPU layers, 2.00 GiB available"
        if not fits
        else "fits, partly on the GPU: 19 of 33 layers in VRAM, the rest in RAM",
    }


def test_fit_prints_the_estimate_and_sends_the_options(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/fit", report())
    assert corral("fit", "llama3:8b", "--ctx", "8192", "--parallel", "2", "--insecure") == 0
    assert server.requests == [
        (
            "POST",
            "/api/fit",
            {"model": "llama3:8b", "num_ctx": 8192, "num_parallel": 2, "insecure": True},
        )
    ]
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "model     llama3:8b (registry)",
        "context   8192 tokens x 2 slots",
        "weights   4.60 GiB",
        "KV cache  2.00 GiB",
        "compute   0.50 GiB",
        "total     7.10 GiB",
        "VRAM      RTX 3070: 7.00 GiB free of 8.00 GiB; 19 layers, 6.00 GiB",
        "          fits: partly, 19 of 33 layers offloaded",
        "          (keeping 1.00 GiB free per GPU: CORRAL_GPU_OVERHEAD)",
        "RAM       needs 3.00 GiB, 2.00 GiB available of 16.00 GiB: fits: yes",
        "verdict   fits, partly on the GPU: 19 of 33 layers in VRAM, the rest in RAM",
    ]


def test_fit_exit_status_says_whether_it_fits(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/fit", report(fits=False))
    assert corral("fit", "llama3:8b", "--json") == 1
    assert json.loads(capsys.readouterr().out)["verdict"].startswith("does not fit")
    server.json("POST", "/api/fit", {"error": 'model "x" not found'}, 404)
    assert corral("fit", "x") == 1
    assert capsys.readouterr().err == 'Error: model "x" not found\n'


def test_pull_warns_but_still_pulls(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/fit", report(fits=False))
    server.on("POST", "/api/pull", lambda _body: ndjson({"status": "success"}))
    assert corral("pull", "llama3:8b") == 0
    # The estimate is asked for beside the pull, not before it.
    assert sorted(server.paths()) == [("POST", "/api/fit"), ("POST", "/api/pull")]
    err = capsys.readouterr().err
    assert "warning: llama3:8b will not fit this server: does not fit: needs 3.00" in err
    assert "pulling anyway" in err and "success" in err


def test_pull_of_a_model_that_fits_says_nothing_extra(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/fit", report(fits=True))
    server.on("POST", "/api/pull", lambda _body: ndjson({"status": "success"}))
    assert corral("pull", "llama3:8b") == 0
    assert "warning" not in capsys.readouterr().err


def test_pull_goes_on_when_the_server_cannot_estimate(
    server: FakeServer, corral: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/fit", lambda _body: httpx.Response(500, json={"error": "no"}))
    server.on("POST", "/api/pull", lambda _body: ndjson({"status": "success"}))
    assert corral("pull", "hf.co/org/repo") == 0
    assert "warning" not in capsys.readouterr().err
