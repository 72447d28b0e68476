"""/metrics: counters move after requests; route templates; each app its own registry."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from corral.api.app import create_app
from corral.api.metrics import Metrics
from corral.config import Settings
from corral.core.options import load_spec
from corral.core.scheduler import Scheduler
from corral.errors import ManifestUnknown
from corral.registry import CredentialStore, RegistryService
from corral.store.models import Store
from tests.fakes import FakeFactory


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def metrics_of(client: TestClient) -> dict[Any, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return scrape(response.text)


CHAT = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]}
M = "smollm2:135m"


def test_counters_move_after_a_chat(client: TestClient) -> None:
    before = metrics_of(client)
    assert value(before, "corral_models_loaded") == 0
    assert value(before, "corral_prompt_tokens_total", model=M) == 0
    response = client.post("/api/chat", json=CHAT)
    assert response.status_code == 200 and '"done":true' in response.text
    assert client.post("/v1/chat/completions", json={**CHAT, "stream": False}).status_code == 200
    after = metrics_of(client)
    chat = {"method": "POST", "route": "/api/chat"}
    assert value(after, "corral_http_requests_total", **chat, status="200") == 1
    assert value(after, "corral_http_request_duration_seconds_count", **chat) == 1
    assert value(after, "corral_http_requests_total", method="POST",
                 route="/v1/chat/completions", status="200") == 1  # fmt: skip
    # FakeEngine: 7 prompt tokens and 3 generated, 3 ms of generation, per request
    assert value(after, "corral_prompt_tokens_total", model=M) == 14
    assert value(after, "corral_generated_tokens_total", model=M) == 6
    assert value(after, "corral_time_to_first_token_seconds_count", model=M) == 2
    assert value(after, "corral_time_to_first_token_seconds_sum", model=M) > 0
    assert value(after, "corral_generation_tokens_per_second_count", model=M) == 2
    assert value(after, "corral_generation_tokens_per_second_sum", model=M) == pytest.approx(2000)
    assert value(after, "corral_engine_starts_total", model=M) == 1
    assert value(after, "corral_models_loaded") == 1
    assert value(after, "corral_model_memory_bytes", model=M) > 50_000_000
    assert value(after, "corral_queue_depth") == 0
    assert value(after, "corral_requests_active") == 0
    assert value(after, "corral_http_requests_total", method="GET", route="/metrics",
                 status="200") == 1  # the first scrape  # fmt: skip


def test_routes_are_templates_and_unknown_paths_one_label(client: TestClient) -> None:
    digest = "sha256:" + "ab" * 32
    assert client.head(f"/api/blobs/{digest}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.post("/api/chat", json={"model": "absent", "messages": []}).status_code == 404
    after = metrics_of(client)
    assert value(after, "corral_http_requests_total", method="HEAD",
                 route="/api/blobs/{digest}", status="404") == 1  # fmt: skip
    assert value(after, "corral_http_requests_total", method="GET", route="<unmatched>",
                 status="404") == 1  # fmt: skip
    assert value(after, "corral_http_requests_total", method="POST", route="/api/chat",
                 status="404") == 1  # fmt: skip
    assert not any(digest in str(key) for key in after)


def test_refused_requests_count_under_their_route(seeded_models: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", models=seeded_models, api_keys=SecretStr("k1"))
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as client:
        assert client.get("/api/tags").status_code == 401
        after = metrics_of(client)  # /metrics itself needs no key
    assert value(after, "corral_http_requests_total", method="GET", route="/api/tags",
                 status="401") == 1  # fmt: skip


def test_two_apps_keep_separate_counts(seeded_models: Path, tmp_path: Path) -> None:
    apps = [
        create_app(Settings(home=tmp_path / f"h{i}", models=seeded_models),
                   engine_factory=FakeFactory())
        for i in range(2)
    ]  # fmt: skip
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        assert one.post("/api/chat", json=CHAT).status_code == 200
        assert value(metrics_of(one), "corral_generated_tokens_total", model=M) == 3
        assert value(metrics_of(two), "corral_generated_tokens_total", model=M) == 0


def test_engine_crash_is_counted(seeded_models: Path, tmp_path: Path) -> None:
    factory = FakeFactory(engine_kwargs={"crash_after": 1})
    settings = Settings(home=tmp_path / "home", models=seeded_models)
    with TestClient(create_app(settings, engine_factory=factory)) as client:
        response = client.post("/api/chat", json=CHAT)
        assert "stopped unexpectedly" in response.text
        after = metrics_of(client)
    assert value(after, "corral_engine_crashes_total", model=M) == 1
    assert value(after, "corral_models_loaded") == 0  # the dead engine was dropped
    assert value(after, "corral_prompt_tokens_total", model=M) == 0  # it never finished


def test_queue_depth_and_active_requests(seeded_models: Path) -> None:
    """Read at scrape time from the scheduler: one request holds the only slot, one waits."""
    metrics = Metrics()
    scheduler = Scheduler(FakeFactory(), max_loaded=1, max_queue=4, observer=metrics)
    metrics.watch_scheduler(scheduler)
    model = Store(seeded_models).get(M)
    spec = load_spec(model, {}, Settings(num_parallel=1))

    async def run() -> dict[Any, float]:
        async with scheduler.acquire(model, spec, None):
            waiter = asyncio.create_task(_hold(scheduler, model, spec))
            for _ in range(100):  # let the waiter run up to its wait for the slot
                if scheduler.queue_depth:
                    break
                await asyncio.sleep(0)
            seen = scrape(metrics.render().decode())
        await waiter
        await scheduler.shutdown()
        return seen

    seen = asyncio.run(run())
    assert value(seen, "corral_queue_depth") == 1
    assert value(seen, "corral_requests_active") == 2
    # the Inference Extension's gauges: one queued, one running, the only slot's cache in use
    assert value(seen, "corral_requests_queued") == 1
    assert value(seen, "corral_requests_running") == 1
    assert value(seen, "corral_kv_cache_utilization") == 1.0
    assert value(seen, "corral_engine_starts_total", model=M) == 1


async def _hold(scheduler: Scheduler, model: Any, spec: Any) -> None:
    async with scheduler.acquire(model, spec, None):
        pass


def _registry(blob: bytes) -> httpx.MockTransport:
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": f"sha256:{hashlib.sha256(config).hexdigest()}", "size": 2},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest,
                    "size": len(blob)}],
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if "/manifests/" in path:
            if "missing" in path:
                return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            return httpx.Response(200, content=json.dumps(manifest).encode())
        data = blob if path.endswith(digest) else config
        start, end = (int(x) for x in request.headers["Range"][6:].split("-"))
        return httpx.Response(206, content=data[start : end + 1])

    return httpx.MockTransport(handler)


def test_pull_bytes_and_results(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 300
    metrics = Metrics()
    service = RegistryService(
        Store(tmp_path / "models"), CredentialStore(tmp_path / "credentials.json"),
        transport=_registry(blob), observer=metrics,
    )  # fmt: skip

    async def pull(name: str) -> None:
        async for _ in service.pull(name):
            pass

    asyncio.run(pull("reg.test/lib/m:1"))
    with pytest.raises(ManifestUnknown, match="file does not exist"):
        asyncio.run(pull("reg.test/lib/missing:1"))
    seen = scrape(metrics.render().decode())
    assert value(seen, "corral_pull_bytes_total") == len(blob) + 2  # the layer and the config
    assert value(seen, "corral_pulls_total", result="success") == 1
    assert value(seen, "corral_pulls_total", result="failure") == 1


@pytest.mark.engine
def test_live_server_metrics_move_after_a_chat(live_server: Any) -> None:
    def scrape_live() -> dict[Any, float]:
        response = httpx.get(f"{live_server.url}/metrics", timeout=30)
        assert response.status_code == 200
        return scrape(response.text)

    before = scrape_live()
    body = {**CHAT, "stream": False, "options": {"num_predict": 6, "temperature": 0}}
    answer = httpx.post(f"{live_server.url}/api/chat", json=body, timeout=120).json()
    after = scrape_live()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("corral_http_requests_total", method="POST", route="/api/chat",
                 status="200") == 1  # fmt: skip
    assert moved("corral_prompt_tokens_total", model=M) == answer["prompt_eval_count"] > 0
    assert moved("corral_generated_tokens_total", model=M) == answer["eval_count"] > 0
    assert moved("corral_time_to_first_token_seconds_count", model=M) == 1
    assert moved("corral_generation_tokens_per_second_count", model=M) == 1
    assert value(after, "corral_engine_starts_total", model=M) >= 1
    assert value(after, "corral_models_loaded") >= 1
    assert value(after, "corral_model_memory_bytes", model=M) > 50_000_000


def test_a_one_token_answer_has_no_rate() -> None:
    """The engine times a single token at about a microsecond: 1e6 tokens/s is no speed."""
    from prometheus_client import generate_latest

    from corral.api.metrics import Metrics

    metrics = Metrics()
    metrics.generation("m", ttft=0.1, prompt_tokens=5, eval_tokens=1, eval_seconds=1e-6)
    metrics.generation("m", ttft=0.1, prompt_tokens=5, eval_tokens=10, eval_seconds=0.1)
    text = generate_latest(metrics.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rate = {s.name: s.value for s in families["corral_generation_tokens_per_second"].samples}
    assert rate["corral_generation_tokens_per_second_count"] == 1
    assert rate["corral_generation_tokens_per_second_sum"] == pytest.approx(100)
    generated = families["corral_generated_tokens"].samples
    assert [s.value for s in generated if s.name.endswith("_total")] == [11]
