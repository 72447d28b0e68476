"""The HTTP API on the real engine and SmolLM2, through a real ``corral serve``."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from corral.names import parse_name
from corral.store.create import create_model
from corral.store.models import Store
from tests.live import LiveServer, alive, engine_pids, engine_port, short_generate, start_server

pytestmark = pytest.mark.engine

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


def post_lines(server: LiveServer, path: str, body: dict) -> list[dict]:  # type: ignore[type-arg]
    with httpx.stream("POST", server.url + path, json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in response.iter_lines()]


def test_chat_streams_tokens_then_honest_metrics(live_server: LiveServer) -> None:
    chunks = post_lines(
        live_server,
        "/api/chat",
        {"model": "smollm2:135m", "messages": HELLO, "options": {"num_predict": 32}},
    )
    *pieces, final = chunks
    assert pieces and all(not c["done"] for c in pieces) and final["done"] is True
    text = "".join(c["message"]["content"] for c in chunks)
    assert text.strip(), "the model said nothing"
    assert all(c["message"]["role"] == "assistant" for c in chunks)
    assert final["done_reason"] in ("stop", "length")
    for key in (
        "total_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert final[key] > 0, key
    assert final["load_duration"] >= 0
    assert final["total_duration"] >= final["prompt_eval_duration"] + final["eval_duration"]
    assert final["eval_count"] <= 32
    assert len([c for c in pieces if c["message"]["content"]]) <= final["eval_count"]


def test_generate_one_object_and_length_limit(live_server: LiveServer) -> None:
    response = httpx.post(
        live_server.url + "/api/generate",
        timeout=120,
        json={
            "model": "smollm2:135m",
            "prompt": "Count: one, two, three,",
            "raw": True,
            "stream": False,
            "options": {"num_predict": 5, "temperature": 0},
        },
    )
    body = response.json()
    assert body["done"] is True and body["done_reason"] == "length"
    assert body["eval_count"] == 5 and body["response"]


def test_same_seed_at_temperature_zero_repeats(live_server: LiveServer) -> None:
    def ask() -> str:
        return str(
            httpx.post(
                live_server.url + "/api/generate",
                timeout=120,
                json={
                    "model": "smollm2:135m",
                    "prompt": "Name a colour.",
                    "stream": False,
                    "options": {"seed": 7, "temperature": 0, "num_predict": 16},
                },
            ).json()["response"]
        )

    assert ask() == ask()


def test_format_json_schema_output_parses(live_server: LiveServer) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    body = httpx.post(
        live_server.url + "/api/chat",
        timeout=120,
        json={
            "model": "smollm2:135m",
            "stream": False,
            "format": schema,
            "messages": [{"role": "user", "content": "Invent a person. Answer in JSON."}],
            "options": {"temperature": 0, "num_predict": 64},
        },
    ).json()
    data = json.loads(body["message"]["content"])
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_disconnect_stops_generation(live_server: LiveServer) -> None:
    with httpx.stream(
        "POST",
        live_server.url + "/api/generate",
        timeout=120,
        json={
            "model": "smollm2:135m",
            "prompt": "Tell a very long story.",
            "options": {"num_predict": 4000},
        },
    ) as response:
        lines = response.iter_lines()
        for _ in range(3):
            assert json.loads(next(lines))["done"] is False
    [pid] = engine_pids(live_server.process.pid)
    slots_url = f"http://127.0.0.1:{engine_port(pid)}/slots"
    deadline = time.monotonic() + 10  # a bound on waiting, not a speed claim
    while time.monotonic() < deadline:
        if not any(slot["is_processing"] for slot in httpx.get(slots_url).json()):
            break
        time.sleep(0.05)
    assert not any(slot["is_processing"] for slot in httpx.get(slots_url).json())


def test_keep_alive_zero_unloads_and_stops_the_engine(live_server: LiveServer) -> None:
    httpx.post(live_server.url + "/api/generate", json={"model": "smollm2:135m"}, timeout=120)
    [running] = httpx.get(live_server.url + "/api/ps").json()["models"]
    assert running["name"] == "smollm2:135m"
    [pid] = engine_pids(live_server.process.pid)
    done = httpx.post(
        live_server.url + "/api/generate",
        timeout=120,
        json={"model": "smollm2:135m", "keep_alive": 0},
    ).json()
    assert done["done_reason"] == "unload"
    assert httpx.get(live_server.url + "/api/ps").json()["models"] == []
    assert not alive(pid)


def test_corrupt_model_fails_alone(
    live_server: LiveServer, smollm2_path: Path, tmp_path: Path
) -> None:
    """A GGUF whose header parses but whose tensors are cut off: the engine refuses it."""
    store = Store(live_server.models_dir)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(smollm2_path.read_bytes()[: 4 << 20])
    create_model(store, parse_name("broken:1"), store.blobs.import_file(truncated))
    response = httpx.post(
        live_server.url + "/api/chat", timeout=120, json={"model": "broken:1", "messages": HELLO}
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert "broken:1" in error and "llama" in error.lower()  # the engine's own last words
    ok = short_generate(live_server.url)
    assert ok.status_code == 200 and ok.json()["done"] is True


def test_kill_9_of_the_server_leaves_no_engine(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", CORRAL_NUM_THREADS="1")
    try:
        httpx.post(server.url + "/api/generate", json={"model": "smollm2:135m"}, timeout=120)
        engines = engine_pids(server.process.pid)
        assert len(engines) == 1
    finally:
        server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in engines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in engines)


def test_embed_on_the_real_engine(live_server: LiveServer) -> None:
    url = live_server.url
    body = httpx.post(
        url + "/api/embed",
        timeout=120,
        json={"model": "smollm2:135m", "input": ["The cat sat.", "A dog ran."]},
    ).json()
    first, second = body["embeddings"]
    assert len(first) == 576 and first != second  # SmolLM2's embedding length
    assert abs(sum(x * x for x in first) - 1) < 1e-3  # normalised
    assert body["prompt_eval_count"] > 4
    short = httpx.post(
        url + "/api/embed",
        timeout=120,
        json={"model": "smollm2:135m", "input": "The cat sat.", "dimensions": 64},
    )
    assert len(short.json()["embeddings"][0]) == 64
    long_text = "word " * 5000
    refused = httpx.post(
        url + "/api/embed",
        timeout=120,
        json={"model": "smollm2:135m", "input": long_text, "truncate": False},
    )
    assert refused.status_code == 400 and "exceeds the context length" in refused.json()["error"]
    cut = httpx.post(
        url + "/api/embed", timeout=120, json={"model": "smollm2:135m", "input": long_text}
    )
    assert cut.status_code == 200 and len(cut.json()["embeddings"][0]) == 576
    legacy = httpx.post(
        url + "/api/embeddings",
        timeout=120,
        json={"model": "smollm2:135m", "prompt": "The cat sat."},
    ).json()
    assert len(legacy["embedding"]) == 576


def test_logprobs_and_context_on_the_real_engine(live_server: LiveServer) -> None:
    body = httpx.post(
        live_server.url + "/api/generate",
        timeout=120,
        json={
            "model": "smollm2:135m",
            "prompt": "Say hi.",
            "stream": False,
            "logprobs": True,
            "top_logprobs": 2,
            "options": {"num_predict": 4, "temperature": 0},
        },
    ).json()
    assert len(body["logprobs"]) == body["eval_count"]
    first = body["logprobs"][0]
    assert first["logprob"] <= 0 and len(first["top_logprobs"]) == 2
    assert "".join(p["token"] for p in body["logprobs"]) == body["response"]
    assert body["context"] and all(isinstance(t, int) for t in body["context"])
    follow = httpx.post(
        live_server.url + "/api/generate",
        timeout=120,
        json={
            "model": "smollm2:135m",
            "prompt": "Again.",
            "context": body["context"],
            "stream": False,
            "options": {"num_predict": 4},
        },
    ).json()
    assert follow["done"] and len(follow["context"]) > len(body["context"])
