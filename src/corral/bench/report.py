"""Turning samples into figures: per-level statistics, ratios, JSON, a table, a PNG chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.bench.runner import BenchConfig, Level, TargetResult
from corral.bench.stats import Summary, summarize

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "FORMAT_VERSION",
    "LevelStats",
    "PlotUnavailable",
    "level_stats",
    "ratios",
    "ratios_table",
    "results_table",
    "to_json",
    "write_plot",
]

FORMAT_VERSION = 1


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True, slots=True)
class LevelStats:
    concurrency: int
    requests: int
    errors: int
    ttft_ms: Summary | None
    prompt_tps: Summary | None  # per request: prompt tokens / TTFT
    gen_tps: Summary | None  # per stream
    aggregate_tps: float | None  # median over rounds of (round's tokens / round's wall time)
    aggregate_rounds: Summary | None  # the rounds' aggregate tokens/s
    aggregate_total_tps: float | None  # all generated tokens / summed round wall time
    prompt_tokens: int
    generated_tokens: int
    wall_s: float
    counted_by: str  # "server", "chunks" or "mixed"

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        def opt(s: Summary | None) -> dict[str, Any] | None:
            return s.as_dict() if s else None

        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "ttft_ms": opt(self.ttft_ms),
            "prompt_tokens_per_s": opt(self.prompt_tps),
            "gen_tokens_per_s_stream": opt(self.gen_tps),
            "gen_tokens_per_s_aggregate": self.aggregate_tps,
            "gen_tokens_per_s_aggregate_rounds": opt(self.aggregate_rounds),
            "gen_tokens_per_s_aggregate_total": self.aggregate_total_tps,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "wall_s": self.wall_s,
            "tokens_counted_by": self.counted_by,
        }


def level_stats(level: Level) -> LevelStats:
    ok = [s for s in level.samples if s.ok]
    generated = sum(s.gen_tokens for s in ok)
    sources = {s.counted_by for s in ok}
    total = generated / level.wall if level.wall > 0 and generated else None
    rounds = summarize(level.rounds) if generated else None
    return LevelStats(
        concurrency=level.concurrency,
        requests=len(level.samples),
        errors=len(level.samples) - len(ok),
        ttft_ms=summarize([s.ttft * 1000 for s in ok if s.ttft is not None]),
        prompt_tps=summarize([r for s in ok if (r := s.prompt_rate) is not None]),
        gen_tps=summarize([r for s in ok if (r := s.gen_rate) is not None]),
        aggregate_tps=rounds.p50 if rounds else total,
        aggregate_rounds=rounds,
        aggregate_total_tps=total,
        prompt_tokens=sum(s.prompt_tokens or 0 for s in ok),
        generated_tokens=generated,
        wall_s=level.wall,
        counted_by=sources.pop() if len(sources) == 1 else ("mixed" if sources else "none"),
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _p50(s: Summary | None) -> float | None:
    return s.p50 if s else None


def ratios(first: TargetResult, second: TargetResult) -> list[dict[str, Any]]:
    """First endpoint over second, per concurrency level (above 1: the first is faster,
    except for TTFT, where above 1 means the first is slower)."""
    rows = []
    other = {lv.concurrency: level_stats(lv) for lv in second.levels}
    for level in first.levels:
        a, b = level_stats(level), other.get(level.concurrency)
        if b is None:
            continue
        rows.append(
            {
                "concurrency": level.concurrency,
                "gen_tokens_per_s_aggregate": _ratio(a.aggregate_tps, b.aggregate_tps),
                "gen_tokens_per_s_stream_p50": _ratio(_p50(a.gen_tps), _p50(b.gen_tps)),
                "prompt_tokens_per_s_p50": _ratio(_p50(a.prompt_tps), _p50(b.prompt_tps)),
                "ttft_p50": _ratio(_p50(a.ttft_ms), _p50(b.ttft_ms)),
            }
        )
    return rows


def to_json(config: BenchConfig, results: Sequence[TargetResult]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "model": config.model,
        "prompt_set": config.workload.name,
        "max_tokens": config.max_tokens,
        "runs": config.runs,
        "concurrency": list(config.concurrency),
        "targets": [
            {
                "label": r.target.label,
                "url": r.target.url,
                "api": r.target.api,
                "levels": [
                    {
                        **level_stats(lv).as_dict(),
                        "errors_seen": sorted({s.error for s in lv.samples if s.error}),
                    }
                    for lv in r.levels
                ],
            }
            for r in results
        ],
    }
    if len(results) == 2:
        doc["ratios"] = {
            "first": results[0].target.label,
            "second": results[1].target.label,
            "levels": ratios(results[0], results[1]),
        }
    return doc


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def results_table(results: Sequence[TargetResult]) -> Table:
    from rich.table import Table

    table = Table(title="corral bench (times in ms, rates in tokens/s)", title_justify="left")
    table.add_column("endpoint")
    for name in ("c", "req", "err %", "TTFT p50", "TTFT p95", "prompt/s", "gen/s p50"):
        table.add_column(name, justify="right")
    for name in ("gen/s p95", "aggregate/s"):
        table.add_column(name, justify="right")
    for result in results:
        for level in result.levels:
            st = level_stats(level)
            table.add_row(
                result.target.label,
                str(st.concurrency),
                str(st.requests),
                _fmt(st.error_rate * 100),
                _fmt(st.ttft_ms.p50 if st.ttft_ms else None),
                _fmt(st.ttft_ms.p95 if st.ttft_ms else None),
                _fmt(_p50(st.prompt_tps)),
                _fmt(_p50(st.gen_tps)),
                _fmt(st.gen_tps.p95 if st.gen_tps else None),
                _fmt(st.aggregate_tps),
            )
    return table


def ratios_table(first: TargetResult, second: TargetResult) -> Table:
    from rich.table import Table

    a, b = first.target.label, second.target.label
    table = Table(title=f"ratios {a} / {b}", title_justify="left")
    table.add_column("c", justify="right")
    for name in ("aggregate/s", "gen/s p50", "prompt/s p50", "TTFT p50"):
        table.add_column(name, justify="right")
    for row in ratios(first, second):
        table.add_row(
            str(row["concurrency"]),
            _fmt(row["gen_tokens_per_s_aggregate"], 3),
            _fmt(row["gen_tokens_per_s_stream_p50"], 3),
            _fmt(row["prompt_tokens_per_s_p50"], 3),
            _fmt(row["ttft_p50"], 3),
        )
    return table


def write_plot(results: Sequence[TargetResult], path: Path, title: str = "") -> None:
    """Three panels against concurrency: aggregate tok/s, per-stream tok/s (p50), TTFT (p50
    solid, p95 dashed). Uses matplotlib's Agg canvas directly: no pyplot, no display."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'corral[bench]' (or pip install matplotlib)"
        ) from exc
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 3)
    for result in results:
        stats = [level_stats(lv) for lv in result.levels]
        xs = [s.concurrency for s in stats]
        label = result.target.label
        panels[0].plot(xs, [s.aggregate_tps or 0 for s in stats], marker="o", label=label)
        panels[1].plot(xs, [_p50(s.gen_tps) or 0 for s in stats], marker="o", label=label)
        line = panels[2].plot(xs, [_p50(s.ttft_ms) or 0 for s in stats], marker="o", label=label)
        p95 = [s.ttft_ms.p95 if s.ttft_ms else 0 for s in stats]
        panels[2].plot(xs, p95, linestyle="--", color=line[0].get_color(), label=f"{label} p95")
    names = ("aggregate tokens/s", "tokens/s per stream (p50)", "time to first token, ms")
    for axes, name in zip(panels, names, strict=True):
        axes.set_title(name)
        axes.set_xlabel("concurrent requests")
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({lv.concurrency for r in results for lv in r.levels}))
        axes.get_xaxis().set_major_formatter("{x:.0f}")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.savefig(path, format="png", dpi=100)
