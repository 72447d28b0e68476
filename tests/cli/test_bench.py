"""``corral bench``: against corral on the scripted engine, and against the live server."""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral.cli.main import main
from corral.runner.protocol import LoadSpec
from tests.bench.fakeserver import fake_corral

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _positive_rates(level: dict[str, Any]) -> None:
    assert level["errors"] == 0, level["errors_seen"]
    assert level["ttft_ms"]["p50"] > 0 and level["ttft_ms"]["p95"] >= level["ttft_ms"]["p50"]
    assert level["prompt_tokens_per_s"]["p50"] > 0
    assert level["gen_tokens_per_s_stream"]["p50"] > 0
    assert level["gen_tokens_per_s_aggregate"] > 0
    assert level["generated_tokens"] > 0 and level["prompt_tokens"] > 0


def test_bench_writes_json_and_prints_a_table_and_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    with fake_corral(tmp_path) as url:
        status = main(["bench", "--url", url, "--compare", f"{url}/v1", "--label", "a,b",
                       "-m", "smollm2:135m", "--concurrency", "1,3", "--runs", "1",
                       "--json", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    doc = json.loads(out.read_text())
    assert [(t["label"], t["api"]) for t in doc["targets"]] == [("a", "ollama"), ("b", "openai")]
    for target in doc["targets"]:
        assert [lv["concurrency"] for lv in target["levels"]] == [1, 3]
        for level in target["levels"]:
            _positive_rates(level)
    assert [r["concurrency"] for r in doc["ratios"]["levels"]] == [1, 3]
    assert "corral bench" in captured.out and "ratios a / b" in captured.out
    assert "a: " in captured.err and "(openai API)" in captured.err


def test_unknown_model_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_corral(tmp_path) as url:
        status = main(["bench", "--url", url, "-m", "nope", "--runs", "1"])
    err = capsys.readouterr().err
    assert status == 1
    assert "Error: warm-up request to" in err and 'model "nope" not found' in err


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "-m", "m", "--concurrency", "1,0"])
    assert exit_info.value.code == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["bench", "-m", "m", "--prompt-set", str(tmp_path / "none.txt")]) == 1
    assert "cannot read prompt file" in capsys.readouterr().err


def test_plot_without_matplotlib_fails_before_measuring(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    status = main(["bench", "--url", "http://127.0.0.1:9", "-m", "m",
                   "--plot", str(tmp_path / "x.png")])  # fmt: skip
    assert status == 1
    assert "--plot needs matplotlib" in capsys.readouterr().err  # not "cannot reach"


@pytest.mark.engine
def test_bench_against_the_live_server(
    live_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real engine: valid JSON with positive rates, and a PNG that opens."""
    out, png = tmp_path / "live.json", tmp_path / "live.png"
    status = main(["bench", "--url", live_server.url, "-m", "smollm2:135m",
                   "--concurrency", "1,2", "--runs", "1", "--max-tokens", "12",
                   "--json", str(out), "--plot", str(png)])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["model"] == "smollm2:135m" and doc["max_tokens"] == 12
    (target,) = doc["targets"]
    assert target["api"] == "ollama"
    assert [lv["requests"] for lv in target["levels"]] == [1, 2]
    for level in target["levels"]:
        _positive_rates(level)
        assert level["tokens_counted_by"] == "server"
        assert level["generated_tokens"] <= 12 * level["requests"]
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1300, 420)
    from matplotlib.image import imread

    pixels = imread(str(png))
    assert pixels.shape[:2] == (420, 1300)
    assert pixels.std() > 0  # not a blank canvas


@pytest.mark.engine
def test_bench_against_llama_server_directly(
    smollm2_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    engine_argv: Callable[[LoadSpec, int], list[str]],
) -> None:
    """The OpenAI path against a bare llama-server (no corral in between): usage comes
    from the engine's own stream_options support."""
    import subprocess
    import time

    import httpx

    from corral.runner.process import free_port
    from tests.live import alive

    port = free_port()
    spec = LoadSpec(model_path=smollm2_path, num_ctx=2048, num_parallel=1, num_thread=2)
    log = (tmp_path / "llama-server.log").open("wb")
    proc = subprocess.Popen(engine_argv(spec, port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to a minute for the model to load
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "llama-server.log").read_text()[-2000:]
            time.sleep(0.1)
        out = tmp_path / "direct.json"
        status = main(["bench", "--api", "openai", "--url", url, "-m", "smollm2",
                       "--concurrency", "1", "--runs", "2", "--max-tokens", "8",
                       "--json", str(out)])  # fmt: skip
        assert status == 0, capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert not alive(proc.pid)
    (target,) = json.loads(out.read_text())["targets"]
    assert target["api"] == "openai"
    (level,) = target["levels"]
    assert level["requests"] == 2
    _positive_rates(level)
    assert level["tokens_counted_by"] == "server"  # llama-server sent usage
