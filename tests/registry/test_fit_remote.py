"""``corral fit`` of models not pulled yet: the manifest and ranged reads of the GGUF header
from the real registry, no download; the numbers are those of the pulled model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.api.app import create_app
from corral.cli.main import main
from corral.client import Client
from corral.config import Settings
from corral.core.fitreport import assess_fit
from corral.gguf import read_gguf
from corral.hardware import Hardware, MemoryInfo
from corral.names import parse_name
from corral.registry.header import FIRST_RANGE, read_remote_header
from corral.registry.oci import OCIClient
from corral.registry.sources import reference_for
from corral.runner.protocol import LoadSpec
from corral.store.create import import_gguf
from corral.store.models import Store
from tests.core.test_fit import MIB, EngineArgv, engine_report
from tests.fakes import FakeFactory
from tests.live import serve_in_thread
from tests.registry.conftest import collect, service
from tests.registry.servers import Registry

pytestmark = pytest.mark.registry

GIB = 1024**3
MEMORY = MemoryInfo(total=16 * GIB, available=12 * GIB)


@pytest.fixture(scope="module")
def published_gemma(
    registry: Registry, gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    root = tmp_path_factory.mktemp("gemma-publisher")
    name = f"{registry.host}/library/gemma3:270m"
    import_gguf(Store(root / "models"), parse_name(name), gemma_path)
    lines = collect(service(Store(root / "models"), root).push(name))
    assert lines[-1] == {"status": "success"}
    return name


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server with an empty store, on fake hardware without a GPU."""
    root = tmp_path_factory.mktemp("fit-remote")
    settings = Settings(home=root / "home", models=root / "models", no_default_model=True)
    hardware = Hardware(gpus=lambda: [], memory=lambda: MEMORY)
    app = create_app(settings, engine_factory=FakeFactory(), hardware=hardware)
    with serve_in_thread(app) as url:
        yield url, root / "models"


def corral_fit(url: str, *argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["fit", *argv, "--json"], client_factory=lambda: Client(url)) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def stored_blobs(models: Path) -> list[Path]:
    return list((models / "blobs").glob("*")) if (models / "blobs").exists() else []


def test_header_is_read_with_growing_ranges(published_gemma: str, gemma_path: Path) -> None:
    async def read() -> Any:
        client = OCIClient(reference_for(parse_name(published_gemma)))
        try:
            return await read_remote_header(client)
        finally:
            await client.aclose()

    found = asyncio.run(read())
    local = read_gguf(gemma_path)
    assert found.info.metadata == local.metadata
    assert found.info.parameter_count == local.parameter_count
    assert found.layer.size == gemma_path.stat().st_size
    # Gemma's 262k-token vocabulary makes a header of several MiB: more than the first range
    assert FIRST_RANGE < found.fetched < found.layer.size


@pytest.mark.parametrize(
    ("fixture", "path_fixture"),
    [("published", "smollm2_path"), ("published_gemma", "gemma_path")],
)
def test_fit_before_pulling_matches_the_model_itself(
    request: pytest.FixtureRequest,
    empty_server: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    fixture: str,
    path_fixture: str,
) -> None:
    name: str = request.getfixturevalue(fixture)
    path: Path = request.getfixturevalue(path_fixture)
    url, models = empty_server
    report = corral_fit(url, name, "--ctx", "2048", "--parallel", "2", capsys=capsys)
    spec = LoadSpec(path, num_ctx=2048, num_parallel=2)
    local = assess_fit(read_gguf(path), path.stat().st_size, spec, gpus=[], memory=MEMORY)
    assert report["source"] == "registry"
    assert report["estimate"] == local.to_dict()["estimate"]
    assert report["verdict"] == "fits in RAM: runs on the CPU (no GPU found)"
    assert stored_blobs(models) == []  # nothing was downloaded into the store


@pytest.mark.engine
def test_remote_fit_within_20_percent_of_the_engine(
    published_gemma: str,
    gemma_path: Path,
    empty_server: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    engine_argv: EngineArgv,
) -> None:
    report = corral_fit(empty_server[0], published_gemma, "--ctx", "4096", capsys=capsys)
    total, weights, context, compute = engine_report(
        LoadSpec(gemma_path, num_ctx=4096), engine_argv
    )
    estimate = report["estimate"]
    assert estimate["total"] / MIB == pytest.approx(total, rel=0.2)
    assert estimate["weights"] / MIB == pytest.approx(weights, rel=0.2)
    assert estimate["kv_cache"] / MIB == pytest.approx(context, rel=0.2, abs=2)
    assert estimate["compute"] / MIB == pytest.approx(compute, rel=0.2, abs=2)


def test_fit_of_a_model_nowhere(
    registry: Registry, empty_server: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{registry.host}/library/nothing:1"
    assert main(["fit", name], client_factory=lambda: Client(empty_server[0])) == 1
    assert capsys.readouterr().err == (
        f'Error: model "{name}" not found locally or in its registry\n'
    )
