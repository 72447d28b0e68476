"""The official ``ollama`` package managing models on a live corral: create (from a model, from
an uploaded blob), copy, delete, and the status codes of its ResponseErrors.

Runs against the shared live server (real engine, real store).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from corral.modelfile import parse_modelfile
from tests.live import LiveServer

pytestmark = pytest.mark.clients

BASE = "smollm2:135m"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[ollama.Client]:
    client = ollama.Client(host=live_server.url)
    yield client
    for name in ("smol-pirate", "smol-pirate-copy", "gemma-upload"):
        with contextlib.suppress(ollama.ResponseError):
            client.delete(name)


def test_create_from_existing_model(client: ollama.Client) -> None:
    response = client.create(
        model="smol-pirate",
        from_=BASE,
        system="You are a pirate.",
        parameters={"temperature": 0.1, "num_ctx": 512, "stop": ["User:"]},
    )
    assert response.status == "success"
    shown = client.show("smol-pirate")  # ollama 0.6.3's ShowResponse has no `system` field
    assert (
        shown.parameters is not None
        and "temperature" in shown.parameters
        and "0.1" in shown.parameters
    )
    assert shown.modelfile is not None
    assert parse_modelfile(shown.modelfile).system == "You are a pirate."
    stream = client.create(model="smol-pirate", from_=BASE, system="You are a pirate.", stream=True)
    statuses = [p.status for p in stream]
    assert statuses[0] is not None and statuses[0].startswith("using existing layer sha256:")
    assert statuses[-2:] == ["writing manifest", "success"]
    answer = client.chat(
        model="smol-pirate",
        messages=[{"role": "user", "content": "Hi!"}],
        options={"num_predict": 8},
    )
    assert answer.message.content and answer.done


def test_create_from_uploaded_blob(client: ollama.Client, gemma_path: Path) -> None:
    digest = client.create_blob(gemma_path)
    expected = hashlib.sha256(gemma_path.read_bytes()).hexdigest()
    assert digest == f"sha256:{expected}"
    assert client.create(model="gemma-upload", files={gemma_path.name: digest}).status == "success"
    [model] = [m for m in client.list().models if m.model == "gemma-upload:latest"]
    assert model.details is not None and model.details.family == "gemma3"
    assert model.size is not None and model.size >= gemma_path.stat().st_size
    out = client.generate(
        model="gemma-upload", prompt="The capital of France is", options={"num_predict": 4}
    )
    assert out.done and (out.eval_count or 0) > 0


def test_copy_and_delete(client: ollama.Client) -> None:
    client.create(model="smol-pirate", from_=BASE, system="You are a pirate.")
    assert client.copy("smol-pirate", "smol-pirate-copy").status == "success"
    digests = {m.model: m.digest for m in client.list().models}
    assert digests["smol-pirate-copy:latest"] == digests["smol-pirate:latest"]
    assert client.delete("smol-pirate-copy").status == "success"
    assert "smol-pirate-copy:latest" not in {m.model for m in client.list().models}
    shown = client.show("smol-pirate")  # shared blobs survived the copy's deletion
    assert shown.modelfile is not None
    assert parse_modelfile(shown.modelfile).system == "You are a pirate."


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [
        (lambda c: c.delete("no-such-model"), 404, "not found"),
        (lambda c: c.copy("no-such-model", "x"), 404, "not found"),
        (lambda c: c.create(model="x", from_="no-such-model"), 404, "not found"),
        (lambda c: list(c.create(model="x", from_="no-such-model", stream=True)), 404, "not found"),
        (
            lambda c: c.create(model="x", from_=BASE, parameters={"bogus": 1}),
            400,
            "unknown parameter 'bogus'",
        ),
        (lambda c: c.create(model="x", from_=BASE, template="{{ .Nope }}"), 400, "template error"),
        (
            lambda c: c.create(model="x", from_=BASE, quantize="q4_K_M"),
            400,
            "only supported for F16 and F32",
        ),
        (lambda c: c.create(model="x"), 400, "neither 'from' or 'files'"),
    ],
)
def test_response_errors(client: ollama.Client, call, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ollama.ResponseError) as info:
        call(client)
    assert info.value.status_code == status
    assert message in info.value.error


def test_blob_digest_mismatch(live_server: LiveServer) -> None:
    blob = f"{live_server.url}/api/blobs/sha256:{'0' * 64}"
    response = httpx.post(blob, content=b"not these bytes")
    assert response.status_code == 400 and "digest mismatch" in response.json()["error"]
    assert httpx.head(blob).status_code == 404
