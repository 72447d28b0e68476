"""corral.client against httpx.MockTransport (and one real refused connection)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

from corral.client import AsyncClient, Client, ClientError, ServerUnreachable

Seen = list[tuple[str, str, Any]]


def make_client(handler: Any, seen: Seen | None = None) -> Client:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            body = json.loads(request.content) if request.content else None
            seen.append((request.method, request.url.path, body))
        response: httpx.Response = handler(request)
        return response

    return Client("http://corral.test", transport=httpx.MockTransport(record))


def lines(*chunks: dict[str, Any]) -> bytes:
    return "".join(json.dumps(c) + "\n" for c in chunks).encode()


def test_chat_streams_ndjson_and_sends_the_request_body() -> None:
    seen: Seen = []
    body = lines({"message": {"content": "Hel"}}, {"message": {"content": "lo"}}, {"done": True})
    body = body.replace(b"\n", b"\n\n", 1)  # blank lines are skipped
    client = make_client(lambda r: httpx.Response(200, content=body), seen)

    chunks = list(
        client.chat(
            "smollm2:135m",
            [{"role": "user", "content": "hi"}],
            options={"temperature": 0},
            system="Be brief.",
            keep_alive="10m",
            format="json",
        )
    )

    assert [c.get("message", {}).get("content") for c in chunks] == ["Hel", "lo", None]
    assert chunks[-1]["done"] is True
    assert seen == [
        (
            "POST",
            "/api/chat",
            {
                "model": "smollm2:135m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
                "stream": True,
                "options": {"temperature": 0},
                "format": "json",
                "keep_alive": "10m",
            },
        )
    ]


def test_generate_sends_prompt_and_system_and_can_disable_streaming() -> None:
    seen: Seen = []
    client = make_client(lambda r: httpx.Response(200, json={"response": "4", "done": True}), seen)

    chunks = list(client.generate("m", "2+2?", system="math", stream=False))

    assert chunks == [{"response": "4", "done": True}]
    assert seen[0][1:] == (
        "/api/generate",
        {"model": "m", "prompt": "2+2?", "stream": False, "system": "math"},
    )


def test_error_line_in_stream_raises_client_error() -> None:
    body = lines({"message": {"content": "par"}}, {"error": "engine crashed"})
    client = make_client(lambda r: httpx.Response(200, content=body))

    stream = client.chat("m", [{"role": "user", "content": "hi"}])
    assert next(stream)["message"]["content"] == "par"
    with pytest.raises(ClientError) as info:
        next(stream)
    assert info.value.message == "engine crashed"
    assert str(info.value) == "engine crashed"
    assert info.value.status_code == 200


@pytest.mark.parametrize("call", ["chat", "show"])
def test_404_raises_client_error_with_message_and_status(call: str) -> None:
    error = {"error": 'model "nope" not found, try pulling it first'}
    client = make_client(lambda r: httpx.Response(404, json=error))

    with pytest.raises(ClientError) as info:
        if call == "chat":
            list(client.chat("nope", []))
        else:
            client.show("nope")
    assert info.value.message == 'model "nope" not found, try pulling it first'
    assert info.value.status_code == 404
    assert not isinstance(info.value, ServerUnreachable)


def test_error_without_json_body_uses_the_text() -> None:
    client = make_client(lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(ClientError) as info:
        client.list()
    assert (info.value.message, info.value.status_code) == ("bad gateway", 502)


def test_refused_connection_raises_server_unreachable() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}")

    for call in (client.list, lambda: list(client.chat("m", [])), client.health):
        with pytest.raises(ServerUnreachable) as info:
            call()
        assert str(info.value) == (
            f"could not connect to corral at http://127.0.0.1:{port}; "
            'start it with "corral serve" (or "make run")'
        )
        assert info.value.status_code is None


def test_base_url_comes_from_corral_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    assert Client().base_url == "http://127.0.0.1:9999"
    monkeypatch.setenv("CORRAL_HOST", "http://example.test:8080/")
    assert Client().base_url == "http://example.test:8080"


def test_get_endpoints_and_show_request() -> None:
    seen: Seen = []
    client = make_client(lambda r: httpx.Response(200, json={"path": r.url.path}), seen)

    assert client.version() == {"path": "/api/version"}
    assert client.list() == {"path": "/api/tags"}
    assert client.ps() == {"path": "/api/ps"}
    assert client.show("m") == {"path": "/api/show"}
    assert seen[-1] == ("POST", "/api/show", {"model": "m"})


def test_health_is_true_only_on_200() -> None:
    ready = make_client(lambda r: httpx.Response(200, json={"status": "ok"}))
    assert ready.health() == (True, {"status": "ok"})

    waiting = make_client(lambda r: httpx.Response(503, json={"status": "starting"}))
    assert waiting.health() == (False, {"status": "starting"})

    odd = make_client(lambda r: httpx.Response(500, text="boom"))
    assert odd.health() == (False, {"status_code": 500, "body": "boom"})


async def test_async_client_streams_and_raises() -> None:
    body = lines({"message": {"content": "a"}}, {"message": {"content": "b"}, "done": True})

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/show":
            return httpx.Response(404, json={"error": "no such model"})
        assert json.loads(request.content)["messages"][0] == {"role": "system", "content": "s"}
        return httpx.Response(200, content=body)

    async with AsyncClient("http://corral.test", transport=httpx.MockTransport(handler)) as c:
        got = [chunk["message"]["content"] async for chunk in c.chat("m", [], system="s")]
        assert got == ["a", "b"]
        with pytest.raises(ClientError, match="no such model"):
            await c.show("x")


def test_making_a_client_does_not_import_httpx_cli_or_rich() -> None:
    code = (
        "import sys\n"
        "from corral.client import Client\n"
        "assert 'httpx' not in sys.modules\n"
        "Client('http://127.0.0.1:9')\n"
        "import httpx\n"
        "heavy = [m for m in ('httpx._main', 'rich', 'click', 'pygments') if m in sys.modules]\n"
        "print(heavy, callable(httpx.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


def test_model_management_requests() -> None:
    seen: Seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/generate":
            return httpx.Response(200, json={"done": True, "done_reason": "unload"})
        if request.url.path == "/api/embed":
            return httpx.Response(200, json={"embeddings": [[0.1, 0.2]]})
        if request.url.path == "/api/show":
            return httpx.Response(200, json={})
        return httpx.Response(200)  # copy and delete answer with an empty body

    client = make_client(handler, seen)

    assert client.copy("a", "b") is None
    assert client.delete("b") is None
    assert client.unload("a") is None
    assert client.embed("e", ["x", "y"], truncate=False, dimensions=None) == {
        "embeddings": [[0.1, 0.2]]
    }
    assert client.show("m", verbose=True, system=None, options={}) == {}
    assert client.show("m", system="s", options={"seed": 1}) == {}
    assert seen == [
        ("POST", "/api/copy", {"source": "a", "destination": "b"}),
        ("DELETE", "/api/delete", {"model": "b"}),
        ("POST", "/api/generate", {"model": "a", "keep_alive": 0}),
        ("POST", "/api/embed", {"model": "e", "input": ["x", "y"], "truncate": False}),
        ("POST", "/api/show", {"model": "m", "verbose": True}),
        ("POST", "/api/show", {"model": "m", "system": "s", "options": {"seed": 1}}),
    ]


def test_delete_of_a_missing_model_raises() -> None:
    client = make_client(lambda r: httpx.Response(404, json={"error": "model 'x' not found"}))
    with pytest.raises(ClientError) as info:
        client.delete("x")
    assert (info.value.message, info.value.status_code) == ("model 'x' not found", 404)


def test_create_streams_statuses_and_leaves_out_empty_fields() -> None:
    seen: Seen = []
    body = lines({"status": "writing manifest"}, {"status": "success"})
    client = make_client(lambda r: httpx.Response(200, content=body), seen)

    statuses = list(
        client.create("mine", from_="llama3.2", system="s", template=None, quantize="q4_K_M")
    )

    assert [s["status"] for s in statuses] == ["writing manifest", "success"]
    assert seen == [
        (
            "POST",
            "/api/create",
            {"model": "mine", "from": "llama3.2", "system": "s", "quantize": "q4_K_M"},
        )
    ]


def test_create_error_line_raises() -> None:
    body = lines({"status": "parsing GGUF"}, {"error": "unsupported architecture"})
    client = make_client(lambda r: httpx.Response(200, content=body))
    with pytest.raises(ClientError, match="unsupported architecture"):
        list(client.create("m", files={"m.gguf": "sha256:00"}))


def test_blobs_head_then_post_streamed() -> None:
    received: list[tuple[str, str, bytes, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        data = request.read()
        received.append(
            (request.method, request.url.path, data, request.headers.get("content-length"))
        )
        if request.method == "HEAD":
            return httpx.Response(200 if request.url.path.endswith("aa") else 404)
        return httpx.Response(201)

    client = Client("http://corral.test", transport=httpx.MockTransport(handler))

    assert client.blob_exists("sha256:aa") is True
    assert client.blob_exists("sha256:bb") is False
    client.create_blob("sha256:bb", iter([b"GG", b"UF"]), 4)

    assert received == [
        ("HEAD", "/api/blobs/sha256:aa", b"", None),
        ("HEAD", "/api/blobs/sha256:bb", b"", None),
        ("POST", "/api/blobs/sha256:bb", b"GGUF", "4"),
    ]


def test_blob_errors_raise() -> None:
    client = make_client(lambda r: httpx.Response(400, json={"error": "digest mismatch"}))
    with pytest.raises(ClientError, match="digest mismatch"):
        client.create_blob("sha256:00", [b"x"], 1)
    with pytest.raises(ClientError, match="digest mismatch"):
        client.blob_exists("sha256:00")


def test_think_is_sent_only_when_set() -> None:
    seen: Seen = []
    client = make_client(lambda r: httpx.Response(200, json={"done": True}), seen)
    list(client.chat("m", [], think=False))
    list(client.generate("m", "hi", think="high"))
    list(client.chat("m", []))
    assert [body.get("think", "unset") for _, _, body in seen] == [False, "high", "unset"]


async def test_async_client_management() -> None:
    seen: Seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"model_info": {}})

    async with AsyncClient("http://corral.test", transport=httpx.MockTransport(handler)) as c:
        await c.copy("a", "b")
        await c.delete("b")
        assert await c.show("a", verbose=True) == {"model_info": {}}
    assert seen == [
        ("POST", "/api/copy", {"source": "a", "destination": "b"}),
        ("DELETE", "/api/delete", {"model": "b"}),
        ("POST", "/api/show", {"model": "a", "verbose": True}),
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CORRAL_API_KEY": "k-corral", "OLLAMA_API_KEY": "k-ollama"}, "Bearer k-corral"),
        ({"OLLAMA_API_KEY": "k-ollama"}, "Bearer k-ollama"),
        ({}, None),
    ],
)
def test_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={"models": []})

    Client("http://corral.test", transport=httpx.MockTransport(record)).list()
    Client("http://corral.test", transport=httpx.MockTransport(record), api_key="given").list()
    assert seen == [expected, "Bearer given"]


def test_cli_says_which_variable_carries_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from corral.cli.main import main

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized: invalid API key"})

    def factory() -> Client:
        return Client("http://corral.test", transport=httpx.MockTransport(refuse))

    assert main(["list"], client_factory=factory) == 1
    assert capsys.readouterr().err == (
        "Error: unauthorized: invalid API key "
        "(the corral command sends $CORRAL_API_KEY, else $OLLAMA_API_KEY)\n"
    )
