"""Unit tests of the registry modules: no network, no registry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from pathlib import Path

import httpx
import pytest

from corral.errors import CorruptBlob, RegistryAuthError, RegistryError
from corral.names import parse_name
from corral.registry import Credential, CredentialStore, DownloadOptions
from corral.registry.auth import RegistryAuth, parse_challenge
from corral.registry.download import PartialBlob, PrefixHasher, download_blob
from corral.registry.oci import MANIFEST_ACCEPT, OCIClient
from corral.registry.sources import SourceKind, is_loopback, reference_for, source_kind
from corral.store.blobs import BlobStore


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost", True), ("127.3.4.5", True), ("[::1]:80", True),
     ("registry.ollama.ai", False), ("10.0.0.1:5000", False), ("example.localhost", True)],
)  # fmt: skip
def test_loopback_hosts_get_plain_http(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_reference_scheme_and_source() -> None:
    assert reference_for(parse_name("smollm2:135m")).base_url == "https://registry.ollama.ai"
    ref = reference_for(parse_name("reg.example/team/m:1"), insecure=True)
    assert (ref.base_url, ref.repository, ref.tag) == ("http://reg.example", "team/m", "1")
    assert reference_for(parse_name("localhost:5000/m")).scheme == "http"
    assert source_kind(parse_name("hf.co/org/repo:Q4_K_M")) is SourceKind.HUGGINGFACE
    assert source_kind(parse_name("huggingface.co/org/repo")) is SourceKind.HUGGINGFACE
    assert source_kind(parse_name("smollm2")) is SourceKind.OCI


def test_credentials_file_is_private_and_logout_removes(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "home" / "credentials.json")
    assert store.get("reg:5000") is None
    store.set("Reg:5000", Credential("alice", "pw"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.get("reg:5000") == Credential("alice", "pw")
    assert json.loads(store.path.read_text()) == {
        "reg:5000": {"username": "alice", "password": "pw"}
    }
    assert store.remove("reg:5000") and not store.remove("reg:5000")
    assert store.get("reg:5000") is None


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry",
                      "scope": "repository:a/b:pull"}  # fmt: skip
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def _registry_app(blob: bytes, *, token: bool = True) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers.get('Range', '')}")
        if request.url.path == "/token":
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"token": "T"})
        if token and request.headers.get("Authorization") != "Bearer T":
            challenge = (
                'Bearer realm="https://reg.test/token",service="s",scope="repository:a/b:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if "/manifests/" in request.url.path:
            assert request.headers["Accept"] == MANIFEST_ACCEPT
            return httpx.Response(200, content=b"{}")
        start, end = (int(x) for x in request.headers["Range"][6:].split("-"))
        return httpx.Response(206, content=blob[start : end + 1])

    return httpx.MockTransport(handler), seen


def test_bearer_flow_then_ranged_parallel_download(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    transport, seen = _registry_app(blob)
    ref = reference_for(parse_name("reg.test/a/b:1"))
    blobs = BlobStore(tmp_path / "blobs")
    got: list[int] = []
    options = DownloadOptions(part_size=256 << 10, parallel=3)

    async def run() -> None:
        client = OCIClient(ref, Credential("u", "p"), transport=transport)
        raw, _ = await client.get_manifest()
        assert raw == b"{}"
        await download_blob(client, blobs, digest, len(blob), got.append, options)
        await client.aclose()

    asyncio.run(run())
    assert blobs.path(digest).read_bytes() == blob
    assert sum(got) == len(blob)
    assert sum(1 for s in seen if s.startswith("GET /token")) == 1  # one token, reused
    ranges = {s.split()[-1] for s in seen if "/blobs/" in s}
    assert len(ranges) == 4  # four ranged parts of 256 KiB
    assert not PartialBlob(blobs, digest, len(blob)).state_path.exists()


def test_bad_bytes_never_become_a_blob(tmp_path: Path) -> None:
    blob = b"x" * 1000
    transport, _ = _registry_app(blob, token=False)
    blobs = BlobStore(tmp_path / "blobs")
    wrong = f"sha256:{hashlib.sha256(b'other').hexdigest()}"

    async def run() -> None:
        client = OCIClient(reference_for(parse_name("reg.test/a/b")), transport=transport)
        await download_blob(client, blobs, wrong, len(blob), lambda n: None)

    with pytest.raises(CorruptBlob, match="digest mismatch"):
        asyncio.run(run())
    assert blobs.digests() == set()
    assert not PartialBlob(blobs, wrong, len(blob)).path.exists()


def test_resume_plan_is_kept_only_for_the_same_size(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    blobs.root.mkdir()
    digest = "sha256:" + "a" * 64
    partial = PartialBlob(blobs, digest, 100)
    partial.load(DownloadOptions(part_size=40))
    assert [(p.start, p.end) for p in partial.parts] == [(0, 33), (34, 67), (68, 99)]
    partial.parts[1].done = 10
    partial.path.write_bytes(b"\0" * 100)
    partial.save()
    again = PartialBlob(blobs, digest, 100)
    again.load(DownloadOptions(part_size=40))
    assert again.completed == 10
    other = PartialBlob(blobs, digest, 200)
    other.load(DownloadOptions(part_size=40))
    assert other.completed == 0


def test_basic_challenge_without_login_says_how(tmp_path: Path) -> None:
    auth = RegistryAuth("reg:5000", None)
    response = httpx.Response(
        401,
        headers={"WWW-Authenticate": 'Basic realm="r"'},
        request=httpx.Request("GET", "http://x"),
    )

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            await auth.answer(client, response)

    with pytest.raises(RegistryAuthError, match="corral login reg:5000"):
        asyncio.run(run())


def test_hash_follows_parts_finishing_out_of_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first part arrives last: the streaming hash must wait for it, not skip it."""
    monkeypatch.setattr(PrefixHasher, "_CHUNK", 4096)  # hash on the way, not only at the end
    blob = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not periodic per part
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    order: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        start, end = (int(x) for x in request.headers["Range"][6:].split("-"))
        if start == 0:
            await asyncio.sleep(0.2)
        order.append(start)
        return httpx.Response(206, content=blob[start : end + 1])

    blobs = BlobStore(tmp_path / "blobs")
    options = DownloadOptions(part_size=256 << 10, parallel=4)

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        client = OCIClient(reference_for(parse_name("reg.test/a/b")), transport=transport)
        await download_blob(client, blobs, digest, len(blob), lambda n: None, options)
        await client.aclose()

    asyncio.run(run())
    assert order[-1] == 0, order  # part 0 really came last
    assert blobs.path(digest).read_bytes() == blob


def test_prefix_hasher_frontier_stops_at_the_first_unfinished_part(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    blobs.root.mkdir()
    partial = PartialBlob(blobs, "sha256:" + "b" * 64, 300)
    partial.load(DownloadOptions(part_size=100))
    first, second, third = partial.parts
    hasher = PrefixHasher(partial, fd=-1)
    assert hasher.frontier() == 0
    third.done = 100  # finished, but not contiguous with the start
    second.done = 40
    assert hasher.frontier() == 0
    first.done = 100
    assert hasher.frontier() == 140  # all of part one, the written start of part two
    second.done = 100
    assert hasher.frontier() == 300


def test_unreachable_registries_are_described_in_words() -> None:
    import socket

    from corral.registry.network import unreachable

    async def refused() -> None:
        client = OCIClient(reference_for(parse_name("127.0.0.1:1/library/x:1")))
        try:
            await client.get_manifest()
        finally:
            await client.aclose()

    with pytest.raises(RegistryError) as caught:
        asyncio.run(refused())
    assert str(caught.value) == (
        "cannot reach registry 127.0.0.1:1: the connection was refused "
        "(is the registry running on that port?)"
    )
    wrapped = httpx.ConnectError("[Errno -2] Name or service not known")
    wrapped.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert "its name does not resolve" in unreachable("registry r.example", wrapped).message
