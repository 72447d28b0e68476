"""Speculative decoding on the real engine, through the server: a draft model named in a
Modelfile, an n-gram mode set per request, the engine's counts in /metrics, clear 400s.

This machine's two models have different vocabularies, so the draft here is SmolLM2
requantized to Q4_0: as a speed-up it is pointless (nearly the target's size), but it is a
real draft the engine loads, runs and verifies against.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from corral.runner.discovery import find_engine_tool
from tests.live import LiveServer

pytestmark = pytest.mark.engine

PROMPTS = [
    "Repeat exactly: The quick brown fox jumps over the lazy dog.",
    "Rewrite this sentence in capital letters: the cat sat on the mat and looked at the door.",
]
PARAGRAPH = (
    "The lighthouse keeper had lived alone on the island for eleven years. Every evening he "
    "climbed the one hundred and twelve steps of the lighthouse, cleaned the great lens, "
    "trimmed the wick and lit the lamp, and every morning he wrote the weather, the ships he "
    "had seen and the state of the sea into a leather logbook."
)


@pytest.fixture(scope="module")
def draft_model(
    live_server: LiveServer, smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    tool = find_engine_tool("llama-quantize", None)
    assert tool is not None, "llama-quantize ships next to llama-server"
    out = tmp_path_factory.mktemp("draft") / "smollm2-q4_0.gguf"
    subprocess.run(
        [str(tool), "--allow-requantize", str(smollm2_path), str(out), "Q4_0", "2"],
        check=True,
        capture_output=True,
    )
    digest = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    with out.open("rb") as body:
        put = httpx.post(f"{live_server.url}/api/blobs/{digest}", content=body, timeout=60)
    assert put.status_code in (200, 201), put.text
    created = create(live_server, {"model": "smollm2-draft:q4_0", "files": {out.name: digest}})
    assert created.status_code == 200, created.text
    modelfile = "FROM smollm2:135m\nDRAFT smollm2-draft:q4_0\nPARAMETER draft_max 4\n"
    created = create(live_server, {"model": "smollm2-spec:135m", "modelfile": modelfile})
    assert created.status_code == 200, created.text
    return "smollm2-spec:135m"


def create(server: LiveServer, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{server.url}/api/create", json={**body, "stream": False}, timeout=120)


def chat(server: LiveServer, model: str, prompt: str, **options: object) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
        "options": {"temperature": 0, "seed": 1, "num_predict": 48, **options},
    }
    return httpx.post(f"{server.url}/api/chat", json=body, timeout=180)


def draft_counts(server: LiveServer, model: str) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text

    def value(name: str) -> float:
        found = re.search(rf'^{name}_total{{model="{re.escape(model)}"}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    return value("corral_draft_tokens"), value("corral_draft_accepted_tokens")


def test_a_draft_model_gives_the_same_greedy_answers(
    live_server: LiveServer, draft_model: str
) -> None:
    plain = [chat(live_server, "smollm2:135m", p).json()["message"]["content"] for p in PROMPTS]
    drafted = [chat(live_server, draft_model, p) for p in PROMPTS]
    assert [r.status_code for r in drafted] == [200, 200], drafted[-1].text
    assert [r.json()["message"]["content"] for r in drafted] == plain
    proposed, accepted = draft_counts(live_server, draft_model)
    assert proposed > 0 and 0 < accepted <= proposed
    ps = httpx.get(f"{live_server.url}/api/ps", timeout=10).json()["models"]
    assert any(m["name"] == "smollm2-spec:135m" for m in ps)


def test_the_draft_counts_in_the_fit(live_server: LiveServer, draft_model: str) -> None:
    with_draft = httpx.post(f"{live_server.url}/api/fit", json={"model": draft_model}).json()
    plain = httpx.post(f"{live_server.url}/api/fit", json={"model": "smollm2:135m"}).json()
    assert with_draft["draft"]["model"] == "smollm2-draft:q4_0"
    assert with_draft["draft"]["weights"] > 0 and with_draft["draft"]["kv_cache"] > 0
    assert with_draft["ram"]["needed"] == plain["ram"]["needed"] + with_draft["draft"]["total"]


def test_ngram_speculation_per_request(live_server: LiveServer) -> None:
    prompt = "Rewrite this text, replacing the word lighthouse with beacon:\n\n" + PARAGRAPH
    answer = chat(live_server, "smollm2:135m", prompt, speculative="ngram", num_predict=96)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"]["content"].strip()
    proposed, accepted = draft_counts(live_server, "smollm2:135m")
    assert proposed > 0 and accepted > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"draft": "missing:1b"}, "draft model 'missing:1b' not found: pull it first"),
        ({"draft": "smollm2:135m"}, "it is the same model"),
        ({"speculative": "quickly"}, "invalid value for option 'speculative'"),
    ],
)
def test_bad_speculation_is_a_400_and_the_model_still_serves(
    live_server: LiveServer, options: dict[str, object], message: str
) -> None:
    refused = chat(live_server, "smollm2:135m", "Hi", **options)
    assert refused.status_code == 400 and message in refused.json()["error"]
    assert chat(live_server, "smollm2:135m", "Hi", num_predict=4).status_code == 200
