"""Percentiles, per-level figures and ratios, from hand-made samples: no server."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.bench import (
    BenchConfig,
    Level,
    Sample,
    Target,
    TargetResult,
    level_stats,
    load_workload,
    percentile,
    ratios,
    summarize,
    to_json,
)


def test_percentile_known_values() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0  # halfway between the middle two
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order of input does not matter


def test_percentile_rejects_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_matches_numpys_linear_method(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)


def test_summarize() -> None:
    assert summarize([]) is None
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s is not None
    assert (s.count, s.p50, s.min, s.max, s.mean) == (5, 3.0, 1.0, 100.0, 22.0)
    assert s.p95 == pytest.approx(80.8)


def _sample(ttft: float, gen_tokens: int, gen_time: float, prompt_tokens: int = 20) -> Sample:
    return Sample(
        started=0.0,
        duration=ttft + gen_time,
        ttft=ttft,
        gen_time=gen_time,
        prompt_tokens=prompt_tokens,
        gen_tokens=gen_tokens,
        chunks=gen_tokens,
    )


def test_level_stats_from_samples() -> None:
    level = Level(concurrency=2, wall=2.0)
    level.samples = [
        _sample(0.1, 11, 1.0),  # 10 tok/s after the first token, 200 prompt tok/s
        _sample(0.2, 21, 1.0),  # 20 tok/s, 100 prompt tok/s
        Sample(started=0.0, error="HTTP 500: boom"),
    ]
    st_ = level_stats(level)
    assert (st_.requests, st_.errors) == (3, 1)
    assert st_.error_rate == pytest.approx(1 / 3)
    assert st_.ttft_ms is not None and st_.ttft_ms.p50 == pytest.approx(150.0)
    assert st_.gen_tps is not None and st_.gen_tps.p50 == pytest.approx(15.0)
    assert st_.prompt_tps is not None and st_.prompt_tps.p50 == pytest.approx(150.0)
    assert st_.generated_tokens == 32 and st_.prompt_tokens == 40
    assert st_.aggregate_tps == pytest.approx(16.0)  # no rounds recorded: the total
    assert st_.aggregate_total_tps == pytest.approx(16.0)  # 32 tokens over 2 s of rounds
    assert st_.counted_by == "server"


def test_aggregate_is_the_median_round() -> None:
    level = Level(concurrency=1, wall=12.0, rounds=[50.0, 5.0, 40.0])  # one slow round
    level.samples = [_sample(0.1, 101, 1.0), _sample(0.1, 101, 10.0), _sample(0.1, 101, 1.0)]
    st_ = level_stats(level)
    assert st_.aggregate_tps == 40.0
    assert st_.aggregate_rounds is not None and st_.aggregate_rounds.min == 5.0
    assert st_.aggregate_total_tps == pytest.approx(303 / 12.0)
    doc = st_.as_dict()
    assert doc["gen_tokens_per_s_aggregate"] == 40.0
    assert doc["gen_tokens_per_s_aggregate_rounds"]["count"] == 3


def test_a_level_where_everything_failed_has_no_rates() -> None:
    level = Level(concurrency=1, wall=1.0, samples=[Sample(started=0.0, error="refused")])
    st_ = level_stats(level)
    assert st_.error_rate == 1.0
    assert st_.ttft_ms is None and st_.gen_tps is None and st_.aggregate_tps is None


def test_one_token_gives_no_stream_rate() -> None:
    assert _sample(0.1, 1, 0.0).gen_rate is None
    assert Sample(started=0.0, ttft=0.5, prompt_tokens=None).prompt_rate is None


def _result(label: str, tps: float, ttft: float) -> TargetResult:
    result = TargetResult(Target(url=f"http://{label}", api="openai", label=label))
    for c in (1, 2):
        level = result.level(c)
        level.samples = [_sample(ttft, int(tps) + 1, 1.0) for _ in range(c)]
        level.wall = 1.0 + ttft
    return result


def test_ratios_are_first_over_second() -> None:
    fast, slow = _result("a", 100, 0.05), _result("b", 50, 0.1)
    rows = ratios(fast, slow)
    assert [r["concurrency"] for r in rows] == [1, 2]
    assert rows[0]["gen_tokens_per_s_stream_p50"] == pytest.approx(2.0)
    assert rows[0]["ttft_p50"] == pytest.approx(0.5)
    assert rows[1]["gen_tokens_per_s_aggregate"] == pytest.approx((202 / 1.05) / (102 / 1.1))


def test_json_document() -> None:
    a, b = _result("a", 100, 0.05), _result("b", 50, 0.1)
    config = BenchConfig(
        model="m", targets=(a.target, b.target), workload=load_workload("short"),
        concurrency=(1, 2), runs=1,
    )  # fmt: skip
    doc = to_json(config, [a, b])
    assert doc["model"] == "m" and doc["concurrency"] == [1, 2]
    assert [t["label"] for t in doc["targets"]] == ["a", "b"]
    level = doc["targets"][0]["levels"][1]
    assert level["requests"] == 2 and level["errors"] == 0 and level["errors_seen"] == []
    assert level["gen_tokens_per_s_stream"]["p50"] == pytest.approx(100.0)
    assert doc["ratios"]["first"] == "a" and len(doc["ratios"]["levels"]) == 2
    assert "ratios" not in to_json(config, [a])
