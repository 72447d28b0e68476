"""What corral's /api/chat costs on top of llama-server called directly.

One run, same model (SmolLM2-135M Q4_1), same engine flags, same threads, same prompts,
same seed and temperature 0. Requests alternate between the two endpoints so that machine
noise hits both alike; each prompt differs by run so the engine's prompt cache cannot help
one side. Measured at the client, for both:

- time to first token (request sent -> first non-empty content piece),
- generation tokens/s (pieces after the first / time from first to last piece).

    .venv/bin/python benchmarks/chat_overhead.py [--runs 7] [--tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from _common import corral_server, direct_engine, fresh_connections

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle. (take {i})"


def timed_stream(lines: Iterator[str], piece_of: Callable[[str], str]) -> list[float]:
    """When each non-empty piece of the answer arrived."""
    return [time.perf_counter() for line in lines if piece_of(line)]


def direct(client: httpx.Client, url: str, prompt: str, tokens: int) -> tuple[float, float, int]:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "temperature": 0,
        "seed": 42,
        "max_tokens": tokens,
    }

    def piece(line: str) -> str:
        if not line.startswith("data: ") or line == "data: [DONE]":
            return ""
        choices = json.loads(line[6:]).get("choices") or [{}]
        return str(choices[0].get("delta", {}).get("content") or "")

    start = time.perf_counter()
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        stamps = timed_stream(response.iter_lines(), piece)
    return summarise(start, stamps)


def corral(client: httpx.Client, url: str, prompt: str, tokens: int) -> tuple[float, float, int]:
    body = {
        "model": "smollm2:135m",
        "messages": [{"role": "user", "content": prompt}],
        "options": {"temperature": 0, "seed": 42, "num_predict": tokens},
    }

    def piece(line: str) -> str:
        return str(json.loads(line).get("message", {}).get("content") or "") if line else ""

    start = time.perf_counter()
    with client.stream("POST", f"{url}/api/chat", json=body) as response:
        stamps = timed_stream(response.iter_lines(), piece)
    return summarise(start, stamps)


def summarise(start: float, stamps: list[float]) -> tuple[float, float, int]:
    ttft_ms = (stamps[0] - start) * 1000
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return ttft_ms, rate, len(stamps)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()

    with (
        direct_engine(4096, 1, args.threads) as direct_url,
        corral_server(num_threads=str(args.threads)) as (corral_url, _),
        fresh_connections(120) as client,
    ):
        direct(client, direct_url, "warm up", 8)
        corral(client, corral_url, "warm up", 8)
        results: dict[str, list[tuple[float, float, int]]] = {"direct": [], "corral": []}
        for i in range(args.runs):
            prompt = PROMPT.format(i=i)
            # Alternate which side goes first, so neither always follows the other.
            order = [("direct", direct, direct_url), ("corral", corral, corral_url)]
            for name, fn, url in order if i % 2 == 0 else order[::-1]:
                results[name].append(fn(client, url, prompt, args.tokens))

    med = {
        name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
        for name, rows in results.items()
    }
    print(
        f"SmolLM2-135M Q4_1, {args.threads} threads, "
        f"{args.tokens} tokens, {args.runs} runs each, medians"
    )
    print(f"{'':<14}{'TTFT ms':>10}{'gen tok/s':>12}")
    for name in ("direct", "corral"):
        print(f"{name:<14}{med[name][0]:>10.1f}{med[name][1]:>12.1f}")
    print(f"corral/direct tokens/s ratio: {med['corral'][1] / med['direct'][1]:.3f}")
    print(f"corral extra TTFT: {med['corral'][0] - med['direct'][0]:+.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
