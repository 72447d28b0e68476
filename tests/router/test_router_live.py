"""The router in front of two real corral replicas (real engines): a conversation stays on
the replica whose prompt cache holds it, /api/tags and /api/pull fan out, and a replica
killed -9 is skipped with nothing lost or hung."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.live import LiveServer, start_server

pytestmark = pytest.mark.engine

MODEL = "smollm2:135m"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LiveServer, list[LiveServer]]]:
    replicas = [start_server(tmp_path / f"replica{i}", CORRAL_NUM_THREADS="1") for i in range(2)]
    router = start_server(
        tmp_path / "router",
        CORRAL_REPLICAS=",".join(r.url for r in replicas),
        CORRAL_ROUTER_HEALTH_INTERVAL="0.5",
    )
    yield router, replicas
    for server in (router, *replicas):
        server.stop(signal.SIGKILL)


def routed(router: LiveServer) -> dict[str, float]:
    text = httpx.get(f"{router.url}/metrics", timeout=10).text
    found = re.findall(r'^corral_router_requests_total\{replica="([^"]+)"\} (\S+)$', text, re.M)
    return {url: float(n) for url, n in found}


def turn(router: LiveServer, messages: list[dict[str, str]]) -> dict[str, object]:
    body = {"model": MODEL, "messages": messages, "max_tokens": 24, "temperature": 0}
    answer = httpx.post(f"{router.url}/v1/chat/completions", json=body, timeout=180)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_turn_two_goes_where_turn_one_was_cached(
    cluster: tuple[LiveServer, list[LiveServer]],
) -> None:
    router, replicas = cluster
    history = [
        {"role": "system", "content": "You are a ship's captain. " * 20},
        {"role": "user", "content": "Where are we sailing?"},
    ]
    first = turn(router, history)
    after_one = routed(router)
    [(home, _)] = after_one.items()
    history += [
        {"role": "assistant", "content": first["choices"][0]["message"]["content"]},  # type: ignore[index]
        {"role": "user", "content": "And when do we arrive?"},
    ]
    second = turn(router, history)
    assert routed(router) == {home: 2.0}
    # the replica's engine reused turn 1's tokens from its prompt cache
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]  # type: ignore[index]
    assert cached > 100
    assert httpx.get(router.url, timeout=10).text == "corral is running"
    tags = httpx.get(f"{router.url}/api/tags", timeout=30).json()["models"]
    assert [m["name"] for m in tags] == [MODEL]  # both replicas have it: listed once
    assert {r.url for r in replicas} >= {home}


def test_a_replica_killed_is_skipped_and_nothing_hangs(
    cluster: tuple[LiveServer, list[LiveServer]],
) -> None:
    router, replicas = cluster
    replicas[0].stop(signal.SIGKILL)
    started = time.monotonic()
    for i in range(4):  # whichever replica the ring picks, every request is answered
        answer = httpx.post(
            f"{router.url}/api/generate",
            json={"model": MODEL, "prompt": f"Say {i}.", "stream": False,
                  "options": {"num_predict": 4}},
            timeout=120,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
    assert set(routed(router)) == {replicas[1].url}
    ready = httpx.get(f"{router.url}/health/ready", timeout=10).json()
    assert ready["replicas"] == 1
    assert time.monotonic() - started < 60
    replicas[1].stop(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while httpx.get(f"{router.url}/health/ready", timeout=10).status_code != 503:
        assert time.monotonic() < deadline, "the router still says ready with no replica"
        time.sleep(0.2)
    refused = httpx.post(f"{router.url}/v1/chat/completions", json={"model": MODEL}, timeout=10)
    assert refused.status_code == 503 and "no corral replica" in refused.json()["error"]["message"]


def test_a_replica_killed_mid_stream_ends_the_stream_with_an_error(
    cluster: tuple[LiveServer, list[LiveServer]],
) -> None:
    router, replicas = cluster
    body = {"model": MODEL, "prompt": "Count to a thousand.", "options": {"num_predict": 2000}}
    with httpx.stream("POST", f"{router.url}/api/generate", json=body, timeout=120) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["done"] is False
        [(serving, _)] = routed(router).items()
        next(r for r in replicas if r.url == serving).stop(signal.SIGKILL)
        rest = [json.loads(line) for line in lines]
    assert "error" in rest[-1] and serving in rest[-1]["error"]
    # the next request goes to the replica that is left
    again = httpx.post(
        f"{router.url}/api/generate",
        json={**body, "stream": False, "options": {"num_predict": 4}},
        timeout=120,
    )
    assert again.status_code == 200, again.text
    assert set(routed(router)) == {r.url for r in replicas}


def names_on(server: LiveServer) -> set[str]:
    models = httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]
    return {m["name"] for m in models}


def test_store_changes_reach_every_replica(
    cluster: tuple[LiveServer, list[LiveServer]], smollm2_path: Path
) -> None:
    """The Ollama client's create (with a blob upload), copy and delete through the router
    change every replica's store, so any replica can serve what the client made."""
    router, replicas = cluster
    client = ollama.Client(host=router.url)
    digest = client.create_blob(smollm2_path)  # HEAD says missing, POST stores it on both
    for replica in replicas:
        assert httpx.head(f"{replica.url}/api/blobs/{digest}", timeout=10).status_code == 200
    client.create(model="captain:1", files={"model.gguf": digest}, system="You are a captain.")
    client.copy("captain:1", "captain:2")
    for replica in replicas:
        assert {"captain:1", "captain:2"} <= names_on(replica)
    client.delete("captain:1")
    for replica in replicas:
        assert "captain:1" not in names_on(replica) and "captain:2" in names_on(replica)
    with pytest.raises(ollama.ResponseError) as missing:
        client.delete("captain:1")
    assert missing.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as bad:
        client.create(model="bad:1", from_="no-such-model:1")
    assert bad.value.status_code in (400, 404) and "no-such-model" in bad.value.error
