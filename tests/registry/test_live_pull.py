"""Pulls against the real registry: resume after kill -9, corruption, sharing, auth."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.errors import CorruptBlob, InsufficientDiskSpace, RegistryAuthError
from corral.names import parse_name
from corral.registry import Credential, CredentialStore, RegistryService
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.registry.conftest import SMALL_PARTS, collect, service
from tests.registry.servers import Proxy, ProxyConfig, Registry, start_registry

pytestmark = pytest.mark.registry

_CHILD = """
import asyncio, sys
from pathlib import Path
from corral.registry import CredentialStore, DownloadOptions, RegistryService
from corral.store.models import Store
root, name = Path(sys.argv[1]), sys.argv[2]
svc = RegistryService(Store(root), CredentialStore(root / "c.json"),
                      options=DownloadOptions(part_size=8 << 20, parallel=2))
async def main():
    async for _ in svc.pull(name):
        pass
asyncio.run(main())
"""


def _model_layer(published: str, registry_host: str, proxy_host: str) -> tuple[str, int]:
    store = Store(Path(os.environ["CORRAL_HOME"]) / "probe")
    lines = collect(service(store, store.root).pull(published))
    assert lines[-1] == {"status": "success"}
    stored = store.manifests.get(parse_name(published))
    assert stored is not None
    model = stored.manifest.first(MediaType.MODEL)
    assert model is not None
    return model.digest, model.size


def test_live_resume_after_kill_9(published: str, registry: Registry, tmp_path: Path) -> None:
    digest, size = _model_layer(published, registry.host, "")
    root = tmp_path / "models"
    state = root / "blobs" / f"{digest.replace(':', '-')}-partial.json"
    with Proxy(ProxyConfig(registry.host, rate=10e6)) as slow:
        name = published.replace(registry.host, slow.host)
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), name])
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and done < size * 0.3:
            time.sleep(0.1)
            with contextlib.suppress(OSError, ValueError):  # not written yet, or mid-write
                done = sum(d for _, _, d in json.loads(state.read_bytes())["parts"])
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert size * 0.3 <= done < size, "the pull was not interrupted part-way"
    assert not (root / "blobs" / digest.replace(":", "-")).exists()
    assert Store(root).manifests.get(parse_name(name)) is None

    with Proxy(ProxyConfig(registry.host)) as counting:
        name = published.replace(registry.host, counting.host)
        lines = collect(service(Store(root), tmp_path).pull(name))
        assert lines[-1] == {"status": "success"}
        assert counting.cfg.blob_bytes <= size - done + (1 << 20)  # tolerance: small blobs
        assert counting.cfg.blob_bytes < size * 0.75
    last = [x for x in lines if x.get("digest") == digest][-1]
    assert last["completed"] == last["total"] == size
    assert not state.exists()


def test_live_corrupted_blob_fails_and_stores_nothing(
    published: str, registry: Registry, tmp_path: Path
) -> None:
    store = Store(tmp_path / "models")
    with Proxy(ProxyConfig(registry.host, flip_at=5000)) as evil:
        name = published.replace(registry.host, evil.host)
        with pytest.raises(CorruptBlob, match="digest mismatch"):
            collect(service(store, tmp_path).pull(name))
    assert store.manifests.get(parse_name(name)) is None
    assert store.blobs.digests() == set()
    leftovers = [p.name for p in store.blobs.root.iterdir() if "partial" in p.name]
    corrupt = [n for n in leftovers if n.endswith("-partial")]
    assert corrupt == [] or all((store.blobs.root / n).stat().st_size < 5000 for n in corrupt), (
        "a partial file with bad bytes must not be kept for a resume"
    )


def test_live_concurrent_pulls_download_once(
    published: str, registry: Registry, tmp_path: Path
) -> None:
    store = Store(tmp_path / "models")
    with Proxy(ProxyConfig(registry.host, rate=40e6)) as proxy:
        name = published.replace(registry.host, proxy.host)
        svc = service(store, tmp_path)

        async def both() -> list[list[dict[str, object]]]:
            async def one() -> list[dict[str, object]]:
                return [x.model_dump(exclude_none=True) async for x in svc.pull(name)]

            return list(await asyncio.gather(one(), one()))

        first, second = asyncio.run(both())
    assert first[-1] == second[-1] == {"status": "success"}
    stored = store.manifests.get(parse_name(name))
    assert stored is not None
    total = sum(layer.size for layer in stored.manifest.layers) + stored.manifest.config.size
    assert svc.puller.downloads == len(stored.manifest.digests())
    assert proxy.cfg.blob_bytes == total  # every byte crossed the wire once


def test_live_not_enough_disk_names_both_numbers(
    published: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    store = Store(tmp_path / "models")
    with pytest.raises(InsufficientDiskSpace, match=r"needs \d+ bytes, 1000 bytes are free"):
        collect(service(store, tmp_path).pull(published))
    assert store.blobs.digests() == set()


def test_live_basic_auth_with_login(published: str, tmp_path: Path) -> None:
    private = start_registry(tmp_path / "private", users={"alice": "s3cret"})
    try:
        store = Store(tmp_path / "models")
        from corral.store.create import copy_manifest
        from tests.registry.conftest import seeded_store

        store = seeded_store(tmp_path / "models")
        name = f"{private.host}/team/smol:1"
        copy_manifest(store, parse_name("smollm2:135m"), parse_name(name))
        creds = CredentialStore(tmp_path / "credentials.json")
        svc = RegistryService(store, creds, options=SMALL_PARTS)
        with pytest.raises(RegistryAuthError, match="corral login"):
            collect(svc.push(name))
        creds.set(private.host, Credential("alice", "wrong"))
        with pytest.raises(RegistryAuthError):
            collect(svc.push(name))
        creds.set(private.host, Credential("alice", "s3cret"))
        assert collect(svc.push(name))[-1] == {"status": "success"}
        fresh = Store(tmp_path / "fresh")
        pulled = collect(RegistryService(fresh, creds, options=SMALL_PARTS).pull(name))
        assert pulled[-1] == {"status": "success"}
    finally:
        private.stop()


def test_live_bearer_challenge(published: str, registry: Registry, tmp_path: Path) -> None:
    creds = CredentialStore(tmp_path / "credentials.json")
    with Proxy(ProxyConfig(registry.host, bearer=("bob", "pw"))) as gate:
        name = published.replace(registry.host, gate.host)
        store = Store(tmp_path / "models")
        with pytest.raises(RegistryAuthError, match="token request"):
            collect(RegistryService(store, creds, options=SMALL_PARTS).pull(name))
        creds.set(gate.host, Credential("bob", "pw"))
        lines = collect(RegistryService(store, creds, options=SMALL_PARTS).pull(name))
        assert lines[-1] == {"status": "success"}
        assert any("scope=repository" in t and "service=corral-test" in t
                   for t in gate.cfg.token_requests)  # fmt: skip
