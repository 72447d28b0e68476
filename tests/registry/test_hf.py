"""Hugging Face pulls against a local server speaking the hub's endpoints.

The real hub is unreachable here, so a small HTTP server on 127.0.0.1 plays it: it answers
``GET /api/models/{repo}/tree/main`` (the listing ``huggingface_hub`` uses, with ``lfs.oid``)
and ``GET /{repo}/resolve/main/{file}`` (a 302 to a ``/cdn/`` path, then ranged bytes), and
serves the SmolLM2 GGUF. ``HF_ENDPOINT`` points corral at it; ``HF_TOKEN`` must arrive as a
Bearer token on the hub's own paths.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corral.errors import BadRequest, CorruptBlob, ManifestUnknown
from corral.names import parse_name
from corral.registry.hf import HFFile, choose_file
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.registry.conftest import collect, service

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
GOOD = "SmolLM2-135M-Instruct-Q4_1.gguf"


@dataclass
class Hub:
    files: dict[str, bytes]
    oids: dict[str, str]
    auth: list[tuple[str, str | None]] = field(default_factory=list)
    body_bytes: int = 0
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
                part = data[start : end + 1]
                with hub.lock:
                    hub.body_bytes += len(part)
                return self._send(206, part, {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
            return self._send(200, data)
        return self._send(404, b'{"error":"Repository not found"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: Hub


@pytest.fixture(scope="module")
def gguf(smollm2_path: Path) -> bytes:
    return smollm2_path.read_bytes()


@pytest.fixture
def hub(gguf: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    sha = hashlib.sha256(gguf).hexdigest()
    files = {GOOD: gguf, "SmolLM2-135M-Instruct-mmproj-f16.gguf": b"x"}
    files["SmolLM2-135M-Instruct-Q8_0-00001-of-00002.gguf"] = b"y"
    files["SmolLM2-135M-Instruct-Q8_0-00002-of-00002.gguf"] = b"z"
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


def test_split_gguf_is_a_400_and_missing_quant_a_404(hub: Hub, tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    with pytest.raises(BadRequest, match="split GGUF"):
        collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q8_0"))
    with pytest.raises(ManifestUnknown, match="Q5_K_M"):
        collect(service(store, tmp_path).pull(f"hf.co/{REPO}:Q5_K_M"))
    with pytest.raises(ManifestUnknown):
        collect(service(store, tmp_path).pull("hf.co/nobody/nothing"))


def _files(*names: str) -> list[HFFile]:
    return [HFFile(name, 1, None) for name in names]


def test_choose_file_rules() -> None:
    files = _files("a/M-Q8_0.gguf", "M-Q4_K_M.gguf", "M-Q4_K_M_L.gguf", "M-mmproj-Q4_K_M.gguf")
    assert choose_file(files, "latest", "r").path == "M-Q4_K_M.gguf"  # the default
    assert choose_file(files, "q4_k_m", "r").path == "M-Q4_K_M.gguf"  # case-insensitive
    assert choose_file(files, "Q4_K_M_L", "r").path == "M-Q4_K_M_L.gguf"
    assert choose_file(files, "q8_0", "r").path == "a/M-Q8_0.gguf"
    with pytest.raises(ManifestUnknown):
        choose_file(files, "Q4_K", "r")  # a whole token, not a prefix
    # No Q4_K_M: the first GGUF by name, never a projector, never a non-GGUF.
    others = _files("README.md", "M-mmproj.gguf", "M-Q5_0.gguf", "M-F16.gguf")
    assert choose_file(others, "latest", "r").path == "M-F16.gguf"
    with pytest.raises(ManifestUnknown, match="no GGUF"):
        choose_file(_files("README.md"), "latest", "r")


def test_api_pull_from_hf_and_split_refused_with_400(hub: Hub, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from corral.api.app import create_app
    from corral.config import Settings
    from tests.fakes import FakeFactory

    settings = Settings(home=tmp_path / "home")
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as api:
        response = api.post("/api/pull", json={"model": f"hf.co/{REPO}:Q8_0", "stream": False})
        assert response.status_code == 400
        assert "split GGUF" in response.json()["error"]
        response = api.post("/api/pull", json={"model": f"hf.co/{REPO}:Q4_1", "stream": False})
        assert response.json() == {"status": "success"}
        names = [m["name"] for m in api.get("/api/tags").json()["models"]]
        assert f"hf.co/{REPO}:Q4_1" in names
