"""On the real engine: a chat longer than the context is trimmed, and /v1 counts the cache."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.engine

MODEL = "smollm2:135m"
NUM_CTX = 4096  # the live server's default context


def long_chat() -> list[dict[str, Any]]:
    """A system message, 60 long turns (about 7,700 tokens) and a last question."""
    line = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are terse."}]
    for i in range(60):
        messages.append({"role": "user", "content": f"Turn {i}: " + line * 4})
        messages.append({"role": "assistant", "content": f"Noted {i}. " + line * 3})
    messages.append({"role": "user", "content": "Say hi"})
    return messages


def test_a_chat_longer_than_the_context_is_answered(live_server: LiveServer) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": long_chat(),
        "stream": False,
        "options": {"num_predict": 16, "temperature": 0},
    }
    # as it was: the engine refuses the whole chat, and now says what to change
    refused = httpx.post(
        live_server.url + "/api/chat", json={**body, "truncate": False}, timeout=120
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert f"({NUM_CTX} tokens)" in error and "raise num_ctx" in error
    whole = int(error.split(" tokens)")[0].rsplit("(", 1)[1])
    assert whole > NUM_CTX  # refused before this change, without truncate: false

    response = httpx.post(live_server.url + "/api/chat", json=body, timeout=300)
    assert response.status_code == 200, response.text
    final = response.json()
    assert final["message"]["content"].strip()
    assert 0 < final["prompt_eval_count"] <= NUM_CTX


def test_openai_prompt_tokens_include_the_cached_part(live_server: LiveServer) -> None:
    messages = [{"role": "user", "content": f"Hi ({uuid.uuid4().hex[:8]})"}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 4, "temperature": 0}
    usages = []
    for _ in range(2):
        response = httpx.post(live_server.url + "/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        usages.append(response.json()["usage"])
    first, second = usages
    assert first["prompt_tokens"] > 5  # the whole templated prompt, not the new tokens only
    assert second["prompt_tokens"] == first["prompt_tokens"]
    assert second["prompt_tokens_details"]["cached_tokens"] > 0  # the repeat came from cache
    assert second["prompt_tokens_details"]["cached_tokens"] < second["prompt_tokens"]


def test_num_ctx_is_held_to_the_models_training_context(live_server: LiveServer) -> None:
    """SmolLM2 was trained for 8192 tokens and llama-server gives no slot more: a larger
    num_ctx loads as 8192 (no KV cache reserved that no request could use), and a prompt
    over it is told that a longer num_ctx cannot help."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": long_chat() + long_chat()[1:],  # about 15,000 tokens
        "stream": False,
        "truncate": False,
        "options": {"num_ctx": 32768, "num_predict": 4},
    }
    refused = httpx.post(live_server.url + "/api/chat", json=body, timeout=120)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert "(8192 tokens)" in error and "the most this model was trained for" in error, error
    assert "raise num_ctx" not in error
    models = httpx.get(live_server.url + "/api/ps").json()["models"]
    assert [m["context_length"] for m in models if m["name"] == MODEL] == [8192]
