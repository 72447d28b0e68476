"""Embeddings, logprobs, context, suffix and think through the Ollama routes, on a fake engine."""

import json

from fastapi.testclient import TestClient

from tests.fakes import FakeFactory

MODEL = "smollm2:135m"


def test_embed_uses_its_own_engine_instance(client: TestClient, factory: FakeFactory) -> None:
    body = client.post("/api/embed", json={"model": MODEL, "input": ["a", "bb"]}).json()
    assert body["embeddings"] == [[0.5, 0.5, 0.5, 0.5]] * 2
    assert body["prompt_eval_count"] == 3 and body["model"] == MODEL
    client.post("/api/generate", json={"model": MODEL, "prompt": "x", "stream": False})
    specs = sorted((e.spec.embedding, e.spec.pooling) for e in factory.engines)
    assert specs == [(False, None), (True, "mean")]  # SmolLM2 has no pooling of its own
    assert all(not e.stopped for e in factory.engines)  # chat did not evict embeddings


def test_embed_dimensions_renormalise(client: TestClient) -> None:
    body = client.post("/api/embed", json={"model": MODEL, "input": "a", "dimensions": 2}).json()
    [vector] = body["embeddings"]
    assert len(vector) == 2 and abs(sum(x * x for x in vector) - 1) < 1e-9


def test_embed_long_input_truncates_or_refuses(client: TestClient, factory: FakeFactory) -> None:
    long = "x" * 600
    options = {"num_ctx": 512}
    ok = client.post("/api/embed", json={"model": MODEL, "input": long, "options": options})
    assert ok.status_code == 200
    sent = factory.engines[0].calls[-1].prompt or ""
    assert sent.count("120") == 512  # 512 token ids of 'x' (ord 120), not 600
    refused = client.post(
        "/api/embed", json={"model": MODEL, "input": long, "options": options, "truncate": False}
    )
    assert refused.status_code == 400
    assert "exceeds the context length (512)" in refused.json()["error"]


def test_legacy_embeddings(client: TestClient) -> None:
    body = client.post("/api/embeddings", json={"model": MODEL, "prompt": "hi"}).json()
    assert body == {"embedding": [0.5, 0.5, 0.5, 0.5]}
    empty = client.post("/api/embeddings", json={"model": MODEL, "prompt": ""}).json()
    assert empty == {"embedding": []}


def test_generate_returns_context_and_continues_from_it(
    client: TestClient, factory: FakeFactory
) -> None:
    first = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False})
    context = first.json()["context"]
    assert "".join(map(chr, context)) == "<user>Hi<assistant>Hello there!"
    client.post(
        "/api/generate",
        json={"model": MODEL, "prompt": "More", "context": context, "stream": False},
    )
    call = factory.engines[0].calls[-1]
    assert call.kind == "complete"
    assert call.prompt == "<user>Hi<assistant>Hello there!<user>More<assistant>"


def test_raw_generate_has_no_context(client: TestClient) -> None:
    body = client.post(
        "/api/generate", json={"model": MODEL, "prompt": "1,", "raw": True, "stream": False}
    ).json()
    assert "context" not in body


def test_logprobs_requested_reach_the_engine(client: TestClient, factory: FakeFactory) -> None:
    client.post(
        "/api/chat",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "logprobs": True,
            "top_logprobs": 3,
            "stream": False,
        },
    )
    client.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    with_probs, without = factory.engines[0].calls
    assert with_probs.params.top_logprobs == 3 and without.params.top_logprobs is None


def test_suffix_needs_a_fill_in_the_middle_model(client: TestClient) -> None:
    response = client.post(
        "/api/generate", json={"model": MODEL, "prompt": "def f(", "suffix": ")"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": '"smollm2:135m" does not support insert'}


def test_think_on_a_model_without_reasoning_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/chat",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "think": True},
    )
    assert response.status_code == 400
    assert "does not support thinking" in response.json()["error"]


def test_top_logprobs_out_of_range_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/generate", json={"model": MODEL, "prompt": "x", "logprobs": True, "top_logprobs": 99}
    )
    assert response.status_code == 400 and "top_logprobs" in response.json()["error"]


def test_chat_stream_lines_are_ndjson_objects(client: TestClient) -> None:
    text = client.post(
        "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    ).text
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
