"""Running a benchmark: warm-up, then rounds of concurrent requests at each level.

A *round* is ``c`` requests sent at once to one endpoint; a *level* is ``runs`` rounds at
concurrency ``c``. With two endpoints (``--compare``) the rounds alternate between them,
first one then the other, the order swapped every round, so both see the same machine state.
A round's aggregate tokens/s is the tokens its requests generated over its wall time (first
request sent -> last stream ended); a level reports the median over its rounds (one round
slowed by something else on the machine does not move it) and the plain total.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from corral.bench.endpoints import Api, BenchError, Sample, Target, detect_api, timed_request
from corral.bench.workload import Workload

__all__ = ["BenchConfig", "Level", "Progress", "TargetResult", "resolve_targets", "run_bench"]

WARMUP_TOKENS = 8


@dataclass(frozen=True, slots=True)
class BenchConfig:
    model: str
    targets: tuple[Target, ...]
    workload: Workload
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    runs: int = 3
    max_tokens: int = 128
    timeout: float = 300.0


@dataclass(slots=True)
class Level:
    concurrency: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0  # summed wall time of this level's rounds
    rounds: list[float] = field(default_factory=list)  # each round's aggregate tokens/s


@dataclass(slots=True)
class TargetResult:
    target: Target
    levels: list[Level] = field(default_factory=list)

    def level(self, concurrency: int) -> Level:
        for level in self.levels:
            if level.concurrency == concurrency:
                return level
        level = Level(concurrency)
        self.levels.append(level)
        return level


@dataclass(frozen=True, slots=True)
class Progress:
    """Reported after the warm-up and after each round."""

    stage: Literal["warmup", "round"]
    label: str
    concurrency: int
    done: int  # requests finished so far (warm-ups not counted)
    total: int
    errors: int


def _client(config: BenchConfig) -> httpx.AsyncClient:
    # A connection per request: llama-server drops idle keep-alive connections after a few
    # seconds, and a reused dead one would count as a failed request.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout, connect=10.0),
        limits=httpx.Limits(max_keepalive_connections=0, max_connections=None),
        trust_env=False,
    )


async def resolve_targets(
    urls: Sequence[str],
    api: Api | Literal["auto"],
    api_key: str | None = None,
    labels: Sequence[str] = (),
) -> tuple[Target, ...]:
    """Targets for ``urls``; ``auto`` asks each endpoint which API it speaks."""
    targets: list[Target] = []
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        for i, raw in enumerate(urls):
            url = raw.rstrip("/")
            chosen: Api
            if url.endswith("/v1"):
                url, chosen = url[:-3], "openai" if api == "auto" else api
            else:
                headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
                chosen = await detect_api(client, url, headers) if api == "auto" else api
            label = labels[i] if i < len(labels) else url.split("://", 1)[-1]
            if any(t.label == label for t in targets):
                label = f"{label} #{i + 1}"  # the same endpoint twice: keep them apart
            targets.append(Target(url=url, api=chosen, label=label, api_key=api_key))
    return tuple(targets)


async def _warm_up(
    client: httpx.AsyncClient, config: BenchConfig, target: Target, index: int
) -> None:
    """One short request: loads the model, and stops the run early when it cannot work."""
    prompt = config.workload.prompt(0, f"warmup-{index}-")
    sample = await timed_request(client, target, config.model, prompt, WARMUP_TOKENS)
    if not sample.ok:
        raise BenchError(f"warm-up request to {target.url} ({target.api}) failed: {sample.error}")


async def run_bench(
    config: BenchConfig, on_progress: Callable[[Progress], None] | None = None
) -> list[TargetResult]:
    """Measure every target at every concurrency level; one result per target, in order."""
    if not config.targets:
        raise BenchError("nothing to measure: no endpoint given")
    if config.runs < 1 or any(c < 1 for c in config.concurrency):
        raise BenchError("runs and every concurrency level must be at least 1")
    results = [TargetResult(t) for t in config.targets]
    total = config.runs * sum(config.concurrency)
    done = {t.label: 0 for t in config.targets}
    errors = {t.label: 0 for t in config.targets}
    counters = dict.fromkeys(range(len(config.targets)), 0)

    def report(stage: Literal["warmup", "round"], target: Target, concurrency: int) -> None:
        if on_progress is not None:
            label = target.label
            on_progress(Progress(stage, label, concurrency, done[label], total, errors[label]))

    async with _client(config) as client:
        for index, target in enumerate(config.targets):
            await _warm_up(client, config, target, index)
            report("warmup", target, 0)
        for concurrency in config.concurrency:
            for round_no in range(config.runs):
                order = list(enumerate(results))
                if round_no % 2:
                    order.reverse()
                for index, result in order:
                    target = result.target
                    start = counters[index]
                    counters[index] += concurrency
                    prompts = [
                        config.workload.prompt(start + k, f"{index}-") for k in range(concurrency)
                    ]
                    began = time.perf_counter()
                    samples = await asyncio.gather(
                        *(timed_request(client, target, config.model, p, config.max_tokens)
                          for p in prompts)
                    )  # fmt: skip
                    wall = time.perf_counter() - began
                    level = result.level(concurrency)
                    level.wall += wall
                    level.rounds.append(sum(s.gen_tokens for s in samples if s.ok) / wall)
                    level.samples.extend(samples)
                    done[target.label] += concurrency
                    errors[target.label] += sum(not s.ok for s in samples)
                    report("round", target, concurrency)
    return results
