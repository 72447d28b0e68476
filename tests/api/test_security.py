"""API keys, read-only scope, CORS origins and DNS-rebinding protection (corral.api.security)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.api.security import is_loopback_name, origin_regex
from corral.auth import KeyConfigError, KeyRing, Scope, load_keys
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import LiveServer, start_server

MODEL = "smollm2:135m"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
OPENAI_CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def _client(seeded_models: Path, tmp_path: Path, **settings: Any) -> TestClient:
    base_url = settings.pop("base_url", "http://testserver")
    app = create_app(
        Settings(home=tmp_path / "home", models=seeded_models, **settings),
        engine_factory=FakeFactory(),
    )
    return TestClient(app, base_url=base_url)


@pytest.fixture
def keyed(seeded_models: Path, tmp_path: Path) -> Iterator[TestClient]:
    with _client(seeded_models, tmp_path, api_keys="full-key, ro:read-key") as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- keys -------------------------------------------------------------------------------------


def test_without_keys_everything_is_open(client: TestClient) -> None:
    assert client.get("/api/tags").status_code == 200
    assert client.get("/v1/models").status_code == 200


def test_missing_key_is_401_in_ollama_shape(keyed: TestClient) -> None:
    response = keyed.get("/api/tags")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert isinstance(error, str)
    assert "requires an API key" in error and "Authorization: Bearer" in error


def test_missing_key_is_401_in_openai_shape(keyed: TestClient) -> None:
    response = keyed.post("/v1/chat/completions", json=OPENAI_CHAT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert "requires an API key" in error["message"]


@pytest.mark.parametrize(
    "header", ["Bearer wrong-key", "Basic ZnVsbC1rZXk6", "Bearer", "full-key", "Bearer full-key2"]
)
def test_wrong_or_malformed_key_is_401(keyed: TestClient, header: str) -> None:
    response = keyed.get("/api/tags", headers={"Authorization": header})
    assert response.status_code == 401
    assert "unauthorized" in response.json()["error"]


def test_right_key_opens_both_surfaces(keyed: TestClient) -> None:
    assert keyed.get("/api/tags", headers=bearer("full-key")).json()["models"]
    chat = keyed.post("/api/chat", json=CHAT, headers=bearer("full-key"))
    assert chat.json()["message"]["content"] == "Hello there!"
    done = keyed.post("/v1/chat/completions", json=OPENAI_CHAT, headers=bearer("full-key"))
    assert done.json()["choices"][0]["message"]["content"] == "Hello there!"
    # the scheme is case-insensitive, as RFC 7235 says
    assert keyed.get("/api/ps", headers={"Authorization": "bearer full-key"}).status_code == 200


def test_root_health_and_schema_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/").text == "corral is running"
    assert keyed.get("/health/live").status_code == 200
    assert keyed.get("/health/ready").status_code == 200
    assert keyed.get("/openapi.json").status_code == 200


def test_unknown_routes_under_api_need_a_key_too(keyed: TestClient) -> None:
    # no route discovery without a key: 401 before 404
    assert keyed.get("/api/nothing-here").status_code == 401
    assert keyed.get("/api/nothing-here", headers=bearer("full-key")).status_code == 404


def test_read_only_key_may_infer_and_list(keyed: TestClient) -> None:
    ro = bearer("read-key")
    assert keyed.get("/api/tags", headers=ro).status_code == 200
    assert keyed.get("/api/ps", headers=ro).status_code == 200
    assert keyed.post("/api/show", json={"model": MODEL}, headers=ro).status_code == 200
    assert keyed.post("/api/chat", json=CHAT, headers=ro).status_code == 200
    assert keyed.post("/v1/chat/completions", json=OPENAI_CHAT, headers=ro).status_code == 200
    assert keyed.get(f"/v1/models/{MODEL}", headers=ro).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/pull", {"model": "x"}),
        ("POST", "/api/push", {"model": "x"}),
        ("POST", "/api/create", {"model": "x", "from": MODEL}),
        ("POST", "/api/copy", {"source": MODEL, "destination": "y"}),
        ("DELETE", "/api/delete", {"model": MODEL}),
        ("POST", "/api/blobs/sha256:" + "0" * 64, None),
    ],
)
def test_read_only_key_cannot_change_models(
    keyed: TestClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = keyed.request(method, path, json=body, headers=bearer("read-key"))
    assert response.status_code == 403
    assert "read-only API key" in response.json()["error"]
    assert keyed.get("/api/tags", headers=bearer("full-key")).json()["models"]  # still there


def test_key_file_of_hashes(seeded_models: Path, tmp_path: Path) -> None:
    path = tmp_path / "keys"
    digest = hashlib.sha256(b"s3cret").hexdigest()
    ro_digest = hashlib.sha256(b"reader").hexdigest()
    path.write_text(f"# team keys\n\nsha256:{digest}  # ci\nro:{ro_digest.upper()}\n")
    with _client(seeded_models, tmp_path, api_keys=str(path)) as client:
        assert client.get("/api/tags", headers=bearer("s3cret")).status_code == 200
        assert client.get("/api/tags", headers=bearer(digest)).status_code == 401  # not the hash
        assert client.post("/api/copy", headers=bearer("reader"), json={}).status_code == 403


def test_bad_key_configuration_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="cannot read"):
        load_keys(str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_text("not-a-hash\n")
    with pytest.raises(KeyConfigError, match=r"bad:1: expected a sha256"):
        load_keys(str(bad))
    with pytest.raises(KeyConfigError, match="no key"):
        load_keys(" , ro: ")
    with pytest.raises(KeyConfigError):
        create_app(Settings(home=tmp_path, api_keys=str(tmp_path / "missing")))


def test_key_ring_scopes_and_repr_hide_keys() -> None:
    ring = load_keys("a, ro:b")
    assert ring.scope_of("a") is Scope.FULL
    assert ring.scope_of("b") is Scope.READ_ONLY
    assert ring.scope_of("ro:b") is None
    assert ring.scope_of("") is None
    assert not KeyRing() and not load_keys("")
    assert "a-very-secret-key" not in repr(Settings(api_keys="a-very-secret-key"))


# -- CORS -------------------------------------------------------------------------------------


def _preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/api/chat",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "http://localhost:3000",
        "https://127.0.0.1:8443",
        "http://0.0.0.0:8080",
        "app://corral",
        "file://",
        "tauri://localhost",
        "vscode-webview://1234abcd",
    ],
)
def test_ollama_default_origins_are_allowed(client: TestClient, origin: str) -> None:
    response = _preflight(client, origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost.evil.example", "http://127.0.0.1.nip.io"]
)
def test_other_origins_are_refused(client: TestClient, origin: str) -> None:
    response = _preflight(client, origin)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = client.get("/api/tags", headers={"Origin": origin})
    assert "access-control-allow-origin" not in simple.headers


def test_configured_origins_with_wildcards(seeded_models: Path, tmp_path: Path) -> None:
    origins = ["https://chat.example.com", "https://*.corp.example", "chrome-extension://*"]
    with _client(seeded_models, tmp_path, origins=origins) as client:
        for origin in [
            "https://chat.example.com",
            "https://a.corp.example",
            "chrome-extension://x",
        ]:
            assert _preflight(client, origin).headers["access-control-allow-origin"] == origin
        assert _preflight(client, "https://chat.example.com.evil").status_code == 400
        assert _preflight(client, "http://localhost:5173").status_code == 200  # defaults stay
    assert "(" not in origin_regex(["https://a(b"]).split("|")[-1].replace("\\(", "")


def test_star_allows_every_origin(seeded_models: Path, tmp_path: Path) -> None:
    with _client(seeded_models, tmp_path, origins=["*"]) as client:
        response = client.get("/api/tags", headers={"Origin": "https://anything.example"})
        assert response.headers["access-control-allow-origin"] == "*"


def test_preflight_needs_no_key_and_401_is_readable_by_the_page(keyed: TestClient) -> None:
    assert _preflight(keyed, "http://localhost:3000").status_code == 200
    response = keyed.get("/api/tags", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


# -- Host header (DNS rebinding) --------------------------------------------------------------


@pytest.fixture
def loopback(seeded_models: Path, tmp_path: Path) -> Iterator[TestClient]:
    """Requests that arrive on a loopback socket of a server bound to loopback."""
    settings: dict[str, Any] = {"base_url": "http://127.0.0.1:11434"}
    with _client(seeded_models, tmp_path, allowed_hosts="ollama.lan", **settings) as client:
        yield client


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:11434",
        "127.0.0.2",
        "localhost:11434",
        "LOCALHOST",
        "app.localhost:11434",
        "[::1]:11434",
        "ollama.lan:11434",
    ],
)
def test_loopback_host_names_pass(loopback: TestClient, host: str) -> None:
    assert loopback.get("/api/tags", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:11434", "localhost.evil.example"])
def test_foreign_host_is_refused_on_loopback(loopback: TestClient, host: str) -> None:
    response = loopback.get("/api/tags", headers={"Host": host})
    assert response.status_code == 403
    assert "DNS-rebinding" in response.json()["error"]
    openai_shape = loopback.get("/v1/models", headers={"Host": host}).json()["error"]
    assert openai_shape["code"] == "forbidden" and "Host header" in openai_shape["message"]
    assert loopback.get("/", headers={"Host": host}).status_code == 403  # the page too


def test_no_host_check_when_bound_beyond_loopback(seeded_models: Path, tmp_path: Path) -> None:
    settings: dict[str, Any] = {"base_url": "http://127.0.0.1:11434", "host": "0.0.0.0:11434"}
    with _client(seeded_models, tmp_path, **settings) as client:
        assert client.get("/api/tags", headers={"Host": "gpu-box.lan"}).status_code == 200


def test_loopback_names() -> None:
    assert is_loopback_name("127.9.9.9") and is_loopback_name("::1") and is_loopback_name("0.0.0.0")
    assert not is_loopback_name("10.0.0.1") and not is_loopback_name("localhost.example")
    assert not is_loopback_name("0.0.0.0", unspecified=False)


# -- the official clients against a live server ----------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("keyed") / "home",
        CORRAL_API_KEYS="live-key,ro:live-reader",
        CORRAL_NUM_THREADS="2",
    )
    yield server
    server.stop()


@pytest.mark.clients
def test_ollama_client_sends_the_key(keyed_server: LiveServer) -> None:
    client = ollama.Client(host=keyed_server.url, headers=bearer("live-key"))
    assert MODEL in [m.model for m in client.list().models]
    answer = client.generate(model=MODEL, prompt="Hi", options={"num_predict": 4})
    assert answer.done
    with pytest.raises(ollama.ResponseError) as info:
        ollama.Client(host=keyed_server.url).list()
    assert info.value.status_code == 401
    assert "requires an API key" in info.value.error
    reader = ollama.Client(host=keyed_server.url, headers=bearer("live-reader"))
    with pytest.raises(ollama.ResponseError) as info:
        reader.delete(MODEL)
    assert info.value.status_code == 403
    assert MODEL in [m.model for m in reader.list().models]


@pytest.mark.clients
def test_ollama_client_reads_ollama_api_key(
    keyed_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "live-key")
    assert ollama.Client(host=keyed_server.url).ps() is not None


@pytest.mark.clients
def test_openai_sdk_sends_its_api_key(keyed_server: LiveServer) -> None:
    client = openai.OpenAI(base_url=keyed_server.url + "/v1", api_key="live-key", max_retries=0)
    assert MODEL in [m.id for m in client.models.list()]
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert completion.choices[0].message.content is not None
    wrong = openai.OpenAI(base_url=keyed_server.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "invalid API key" in info.value.message


@pytest.mark.clients
def test_live_server_refuses_foreign_host(keyed_server: LiveServer) -> None:
    port = keyed_server.url.rsplit(":", 1)[1]
    refused = httpx.get(keyed_server.url + "/", headers={"Host": f"rebound.example:{port}"})
    assert refused.status_code == 403
    assert "DNS-rebinding" in refused.json()["error"]
    assert httpx.get(keyed_server.url + "/", headers={"Host": f"localhost:{port}"}).text
