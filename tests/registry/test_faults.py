"""Faults during a pull against the real registry: a flaky network and a disk that fills up.

Both must end in either a correct, verified model or a clear error with nothing new visible
in the store (and the partial file kept, so the next pull resumes).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import InsufficientDiskSpace
from corral.names import parse_name
from corral.registry import DownloadOptions
from corral.store.blobs import sha256_file
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.registry.conftest import collect, service
from tests.registry.servers import Proxy, ProxyConfig, Registry

pytestmark = pytest.mark.registry

PATIENT = DownloadOptions(part_size=8 << 20, parallel=4, retries=8, backoff=0.02)


def test_flaky_registry_still_ends_in_a_correct_model(
    published: str, registry: Registry, tmp_path: Path
) -> None:
    """The proxy drops 40 % of blob connections, half before answering, half mid-body."""
    with Proxy(ProxyConfig(registry.host, drop_chance=0.4)) as flaky:
        name = published.replace(registry.host, flaky.host)
        store = Store(tmp_path / "models")
        lines = collect(service(store, tmp_path, options=PATIENT).pull(name))
        assert lines[-1] == {"status": "success"}
        assert flaky.cfg.drops >= 2, "the proxy dropped nothing: the test proved nothing"
    model = store.get(parse_name(name))
    for digest in model.manifest.digests():
        assert sha256_file(store.blobs.path(digest)) == digest
    assert not list(store.blobs.root.glob("*-partial*"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 140 MB tmpfs: room for the 98 MB model, not for much else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=140M", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Write zeros until the file system is full (another program eating the disk)."""
    filler = directory / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
    return filler


def test_disk_filling_up_mid_pull_leaves_the_store_as_it_was_and_resumes(
    published: str, registry: Registry, small_disk: Path
) -> None:
    root = small_disk / "models"
    store = Store(root)
    with Proxy(ProxyConfig(registry.host, rate=20e6)) as slow:
        name = published.replace(registry.host, slow.host)
        registry_service = service(store, small_disk, options=PATIENT)
        outcome: list[BaseException | list[dict[str, object]]] = []

        def pull() -> None:
            try:
                outcome.append(collect(registry_service.pull(name)))
            except BaseException as exc:
                outcome.append(exc)

        puller = threading.Thread(target=pull)
        puller.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and slow.cfg.blob_bytes < 20_000_000:
            time.sleep(0.05)
        filler = _fill(small_disk)
        puller.join(120)
        assert not puller.is_alive()
    [error] = outcome
    assert isinstance(error, InsufficientDiskSpace), error
    assert "disk filled up" in error.message and "pull again to resume" in error.message
    assert list(store.manifests) == []  # nothing visible
    assert {p.name for p in root.joinpath("blobs").iterdir() if "partial" not in p.name} == set()

    filler.unlink()  # space freed: the same pull resumes and completes
    with Proxy(ProxyConfig(registry.host)) as counting:
        name = published.replace(registry.host, counting.host)
        lines = collect(service(store, small_disk, options=PATIENT).pull(name))
        assert lines[-1] == {"status": "success"}
        model = store.get(parse_name(name))
        layer = model.manifest.first(MediaType.MODEL)
        assert layer is not None
        assert counting.cfg.blob_bytes < layer.size  # the written parts were kept
    assert sha256_file(model.model_path) == layer.digest


def test_api_reports_a_full_disk_as_a_clear_error(
    published: str, registry: Registry, small_disk: Path, tmp_path: Path
) -> None:
    """Not enough room before the download starts: refused up front, numbers named."""
    from fastapi.testclient import TestClient

    from corral.api.app import create_app
    from corral.config import Settings
    from tests.fakes import FakeFactory

    _fill(small_disk)
    settings = Settings(home=tmp_path / "home", models=small_disk / "models")
    app = create_app(settings, engine_factory=FakeFactory())
    with TestClient(app) as api:
        # No room even for the default model: the server starts anyway and says why in the log.
        assert api.get("/health/ready").status_code == 200
        response = api.post("/api/pull", json={"model": published, "stream": False})
    assert response.status_code >= 500
    error = response.json()["error"]
    assert "not enough disk space" in error and "bytes are free" in error
    assert not list((small_disk / "models" / "manifests").glob("**/*.*"))


def test_server_killed_mid_pull_resumes_after_restart(
    published: str, registry: Registry, tmp_path: Path
) -> None:
    """``kill -9`` of ``corral serve`` while /api/pull runs; a new server, the same pull."""
    import signal

    import httpx

    from tests.live import start_server

    home = tmp_path / "home"
    env = {"CORRAL_NO_DEFAULT_MODEL": "1"}
    digest = size = None
    with Proxy(ProxyConfig(registry.host, rate=8e6)) as slow:
        name = published.replace(registry.host, slow.host)
        server = start_server(home, **env)
        try:
            with httpx.stream(
                "POST", server.url + "/api/pull", json={"model": name}, timeout=60
            ) as response:
                for raw in response.iter_lines():
                    line = json.loads(raw)
                    if line.get("total", 0) > 50_000_000:
                        digest, size = line["digest"], line["total"]
                        if line.get("completed", 0) >= size * 0.3:
                            server.stop(signal.SIGKILL)
                            break
        except httpx.HTTPError:
            pass  # the connection died with the server
        finally:
            server.stop(signal.SIGKILL)
    assert digest is not None and size is not None
    blobs = home / "models" / "blobs"
    assert not (blobs / digest.replace(":", "-")).exists()
    assert (blobs / f"{digest.replace(':', '-')}-partial").exists()

    with Proxy(ProxyConfig(registry.host)) as counting:
        name = published.replace(registry.host, counting.host)
        server = start_server(home, **env)
        try:
            response = httpx.post(
                server.url + "/api/pull", json={"model": name, "stream": False}, timeout=120
            )
            assert response.json() == {"status": "success"}
            tags = httpx.get(server.url + "/api/tags").json()["models"]
            assert [m["name"] for m in tags] == [name]
        finally:
            assert server.stop() in (0, -signal.SIGTERM)
        assert counting.cfg.blob_bytes < size * 0.8  # the parts written before the kill stayed
    assert sha256_file(blobs / digest.replace(":", "-")) == digest
