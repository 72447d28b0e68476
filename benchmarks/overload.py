"""Overload: 3 x CORRAL_MAX_QUEUE simultaneous requests against one slot.

Every request must either complete or be refused with 503 (none lost, none hung); refusals
must come at once; the server's memory must stay bounded. Also reports the server's memory
with no engine loaded.

    .venv/bin/python benchmarks/overload.py [--max-queue 16] [--tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from _common import corral_server, rss_mib


async def one(client: httpx.AsyncClient, url: str, i: int, tokens: int) -> tuple[int, float, bool]:
    start = time.perf_counter()
    body = {
        "model": "smollm2:135m",
        "stream": False,
        "messages": [{"role": "user", "content": f"Say the number {i}."}],
        "options": {"num_predict": tokens},
    }
    response = await client.post(f"{url}/api/chat", json=body)
    elapsed = (time.perf_counter() - start) * 1000
    done = response.status_code == 200 and response.json().get("done") is True
    return response.status_code, elapsed, done


async def storm(url: str, n: int, tokens: int) -> list[tuple[int, float, bool]]:
    limits = httpx.Limits(max_connections=n + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        return await asyncio.gather(*(one(client, url, i, tokens) for i in range(n)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-queue", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    n = 3 * args.max_queue
    with corral_server(max_queue=str(args.max_queue), num_parallel="1") as (url, proc):
        httpx.get(f"{url}/api/tags")
        idle_rss = rss_mib(proc.pid)
        httpx.post(f"{url}/api/generate", json={"model": "smollm2:135m"}, timeout=120)
        loaded_rss = rss_mib(proc.pid)
        results = asyncio.run(storm(url, n, args.tokens))
        after_rss = rss_mib(proc.pid)
    ok = [r for r in results if r[0] == 200 and r[2]]
    busy = [r for r in results if r[0] == 503]
    other = [r for r in results if r not in ok and r not in busy]
    print(f"{n} simultaneous requests, CORRAL_MAX_QUEUE={args.max_queue}, 1 slot")
    print(f"completed: {len(ok)}, refused with 503: {len(busy)}, anything else: {len(other)}")
    if busy:
        print(
            f"503 latency: median {statistics.median(r[1] for r in busy):.1f} ms, "
            f"max {max(r[1] for r in busy):.1f} ms"
        )
    print(
        f"server RSS: {idle_rss:.0f} MiB idle with no engine, {loaded_rss:.0f} MiB with one "
        f"model loaded, {after_rss:.0f} MiB after the storm"
    )
    return 0 if not other and len(ok) + len(busy) == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
