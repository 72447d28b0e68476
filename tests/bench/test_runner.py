"""run_bench end to end over HTTP against corral on the scripted engine (no llama-server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.bench import (
    BenchConfig,
    BenchError,
    Progress,
    load_workload,
    resolve_targets,
    run_bench,
    to_json,
)
from tests.bench.fakeserver import fake_corral
from tests.fakes import FakeFactory


def test_two_apis_alternate_and_every_request_is_measured(tmp_path: Path) -> None:
    factory = FakeFactory()
    events: list[Progress] = []
    with fake_corral(tmp_path, factory) as url:
        targets = asyncio.run(resolve_targets([url, f"{url}/v1"], "auto", labels=["nd", "sse"]))
        assert [(t.api, t.label, t.url) for t in targets] == [
            ("ollama", "nd", url), ("openai", "sse", url)
        ]  # fmt: skip
        config = BenchConfig(
            model="smollm2:135m", targets=targets, workload=load_workload("short"),
            concurrency=(1, 2), runs=2, max_tokens=16,
        )  # fmt: skip
        results = asyncio.run(run_bench(config, events.append))
    for result in results:
        assert [lv.concurrency for lv in result.levels] == [1, 2]
        samples = [s for lv in result.levels for s in lv.samples]
        assert len(samples) == 2 * (1 + 2)
        assert all(s.ok for s in samples), [s.error for s in samples]
        assert {s.gen_tokens for s in samples} == {3}  # FakeEngine's three words
        assert all(s.ttft is not None and s.ttft > 0 for s in samples)
        assert [len(lv.rounds) for lv in result.levels] == [2, 2]
        assert all(rate > 0 for lv in result.levels for rate in lv.rounds)
    # 2 warm-ups + 12 measured requests, each with its own prompt
    prompts = [c.messages[-1]["content"] for e in factory.engines for c in e.calls if c.messages]
    assert len(prompts) == 14 and len(set(prompts)) == 14
    rounds = [(e.label, e.concurrency) for e in events if e.stage == "round"]
    assert rounds == [("nd", 1), ("sse", 1), ("sse", 1), ("nd", 1),
                      ("nd", 2), ("sse", 2), ("sse", 2), ("nd", 2)]  # fmt: skip
    assert events[-1].done == events[-1].total == 6
    doc = to_json(config, results)
    assert doc["targets"][1]["levels"][0]["tokens_counted_by"] == "server"  # usage was sent
    assert doc["ratios"]["levels"][0]["gen_tokens_per_s_aggregate"] > 0


def test_unknown_model_stops_at_the_warm_up(tmp_path: Path) -> None:
    with fake_corral(tmp_path) as url:
        targets = asyncio.run(resolve_targets([url], "ollama"))
        config = BenchConfig(model="nope", targets=targets, workload=load_workload("short"))
        with pytest.raises(BenchError, match=r'warm-up request .* failed: HTTP 404: model "nope"'):
            asyncio.run(run_bench(config))


def test_failures_during_the_run_are_counted(tmp_path: Path) -> None:
    factory = FakeFactory()

    def break_engines(event: Progress) -> None:
        if event.stage == "warmup":  # from now on every stream dies after its first word
            factory.engine_kwargs["crash_after"] = 1
            for engine in factory.engines:
                engine.crash_after = 1

    with fake_corral(tmp_path, factory) as url:
        targets = asyncio.run(resolve_targets([url], "openai"))
        config = BenchConfig(
            model="smollm2:135m", targets=targets, workload=load_workload("short"),
            concurrency=(1, 2), runs=1, max_tokens=8,
        )  # fmt: skip
        results = asyncio.run(run_bench(config, break_engines))
    doc = to_json(config, results)
    levels = doc["targets"][0]["levels"]
    assert [(lv["requests"], lv["errors"], lv["error_rate"]) for lv in levels] == [
        (1, 1, 1.0), (2, 2, 1.0)
    ]  # fmt: skip
    assert any("stopped unexpectedly" in e for e in levels[0]["errors_seen"])
    assert levels[0]["gen_tokens_per_s_aggregate"] is None


def test_nothing_reachable(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="cannot reach"):
        asyncio.run(resolve_targets(["http://127.0.0.1:9"], "auto"))
