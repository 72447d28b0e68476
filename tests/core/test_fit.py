"""The memory estimate against what llama-server itself reports for the real models."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.api.app import create_app
from corral.cli.main import main
from corral.client import Client
from corral.config import Settings
from corral.core.fit import estimate_memory
from corral.gguf import read_gguf
from corral.names import parse_name
from corral.runner.process import free_port
from corral.runner.protocol import LoadSpec
from corral.store.create import import_gguf
from corral.store.defaults import ensure_default_model
from corral.store.models import Store
from tests.fakes import FakeFactory
from tests.live import serve_in_thread

MIB = 1024 * 1024
_BREAKDOWN = re.compile(r"- Host\s*\|\s*(\d+) =\s*(\d+) \+\s*(\d+) \+\s*(\d+)")


EngineArgv = Callable[[LoadSpec, int], list[str]]


def engine_report(spec: LoadSpec, engine_argv: EngineArgv) -> tuple[int, int, int, int]:
    """(total, model, context, compute) MiB from llama-server's memory breakdown line."""
    cmd = [*engine_argv(spec, free_port()), "-v", "-t", "1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        assert p.stdout is not None
        deadline = time.monotonic() + 60
        try:
            for line in p.stdout:
                match = _BREAKDOWN.search(line)
                if match:
                    total, model, context, compute = map(int, match.groups())
                    return total, model, context, compute
                assert time.monotonic() < deadline, "no memory breakdown from the engine"
        finally:
            p.kill()
    raise AssertionError("the engine exited without a memory breakdown")


def test_kv_cache_grows_with_context_and_slots(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    one = estimate_memory(info, 1, LoadSpec(model_path=smollm2_path, num_ctx=1024))
    four = estimate_memory(info, 1, LoadSpec(model_path=smollm2_path, num_ctx=1024, num_parallel=4))
    double = estimate_memory(info, 1, LoadSpec(model_path=smollm2_path, num_ctx=2048))
    assert four.kv_cache == 4 * one.kv_cache and double.kv_cache == 2 * one.kv_cache
    # 30 layers x 1024 cells x 3 KV heads x (64 + 64) x 2 bytes
    assert one.kv_cache == 30 * 1024 * 3 * 128 * 2


def test_sliding_window_layers_keep_a_window(gemma_path: Path) -> None:
    info = read_gguf(gemma_path)
    small = estimate_memory(info, 1, LoadSpec(model_path=gemma_path, num_ctx=4096))
    big = estimate_memory(info, 1, LoadSpec(model_path=gemma_path, num_ctx=8192))
    assert big.kv_cache < 2 * small.kv_cache  # only the 3 global layers grow


@pytest.mark.engine
@pytest.mark.parametrize(
    ("model", "spec_args"),
    [
        ("smollm2", {"num_ctx": 4096}),
        ("smollm2", {"num_ctx": 2048, "num_parallel": 4}),
        ("smollm2", {"num_ctx": 1024, "embedding": True, "pooling": "mean"}),
        ("gemma", {"num_ctx": 4096}),
        ("gemma", {"num_ctx": 1024, "embedding": True, "pooling": "mean"}),
    ],
)
def test_estimate_within_20_percent_of_the_engine(
    request: pytest.FixtureRequest,
    engine_argv: EngineArgv,
    model: str,
    spec_args: dict[str, object],
) -> None:
    path: Path = request.getfixturevalue(f"{model}_path")
    spec = LoadSpec(model_path=path, **spec_args)  # type: ignore[arg-type]
    estimate = estimate_memory(read_gguf(path), path.stat().st_size, spec)
    total, _, context, compute = engine_report(spec, engine_argv)
    assert estimate.total / MIB == pytest.approx(total, rel=0.2)
    assert estimate.kv_cache / MIB == pytest.approx(context, rel=0.2, abs=2)
    assert estimate.compute / MIB == pytest.approx(compute, rel=0.2, abs=2)


# -- `corral fit` end to end: the CLI, the server's /api/fit, the engine's own report ----------


@pytest.fixture(scope="module")
def fit_server(tmp_path_factory: pytest.TempPathFactory, gemma_path: Path) -> Iterator[str]:
    """A server (on this machine's real hardware probe) whose store holds both models."""
    root = tmp_path_factory.mktemp("fit")
    store = Store(root / "models")
    assert ensure_default_model(store)
    import_gguf(store, parse_name("gemma3-270m"), gemma_path)
    settings = Settings(home=root / "home", models=root / "models")
    with serve_in_thread(create_app(settings, engine_factory=FakeFactory())) as url:
        yield url


def corral_fit(url: str, *argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    status = main(["fit", *argv, "--json"], client_factory=lambda: Client(url))
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == (0 if report["fits"] else 1)
    return report


@pytest.mark.engine
@pytest.mark.parametrize(
    ("model", "name", "ctx", "parallel"),
    [
        ("smollm2", "smollm2:135m", 4096, 1),
        ("smollm2", "smollm2:135m", 2048, 4),
        ("gemma", "gemma3-270m", 4096, 1),
        ("gemma", "gemma3-270m", 8192, 2),
    ],
)
def test_corral_fit_within_20_percent_of_the_engine(
    request: pytest.FixtureRequest,
    fit_server: str,
    engine_argv: EngineArgv,
    capsys: pytest.CaptureFixture[str],
    model: str,
    name: str,
    ctx: int,
    parallel: int,
) -> None:
    path: Path = request.getfixturevalue(f"{model}_path")
    report = corral_fit(
        fit_server, name, "--ctx", str(ctx), "--parallel", str(parallel), capsys=capsys
    )
    assert (report["source"], report["num_ctx"], report["num_parallel"]) == ("local", ctx, parallel)
    total, weights, context, compute = engine_report(
        LoadSpec(model_path=path, num_ctx=ctx, num_parallel=parallel), engine_argv
    )
    estimate = report["estimate"]
    assert estimate["total"] / MIB == pytest.approx(total, rel=0.2)
    assert estimate["weights"] / MIB == pytest.approx(weights, rel=0.2)
    assert estimate["kv_cache"] / MIB == pytest.approx(context, rel=0.2, abs=2)
    assert estimate["compute"] / MIB == pytest.approx(compute, rel=0.2, abs=2)
    assert report["ram"]["needed"] >= estimate["total"] - report["vram"]["needed"]
