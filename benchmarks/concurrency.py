"""Aggregate generation throughput at 1, 2, 4 and 8 concurrent streams.

corral (``/api/chat``, CORRAL_NUM_PARALLEL slots) against llama-server called directly with
the same slots and flags, and optionally against ``llama_cpp.server`` (llama-cpp-python), the
Python peer, when ``--peer-python`` points at an interpreter that has it installed::

    .venv/bin/python benchmarks/concurrency.py [--slots 4] [--tokens 96] [--threads 2]
        [--peer-python .venv-peer/bin/python]

Aggregate tokens/s = all answer pieces of all streams / wall time from the first request to
the last piece; the median of --repeats rounds. Endpoints take turns (the order alternates),
so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx

from _common import corral_server, direct_engine, process, smollm2, wait_until
from corral.runner.process import free_port

PROMPT = "Stream {i}: describe a different city in a few sentences."


def openai_piece(line: str) -> int:
    if not line.startswith("data: ") or line.endswith("[DONE]"):
        return 0
    choices = json.loads(line[6:]).get("choices") or [{}]
    return 1 if choices[0].get("delta", {}).get("content") else 0


def ollama_piece(line: str) -> int:
    return 1 if line and json.loads(line).get("message", {}).get("content") else 0


async def one_stream(
    client: httpx.AsyncClient, url: str, body: dict[str, object], piece: Callable[[str], int]
) -> int:
    pieces = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            pieces += piece(line)
    return pieces


def requests(kind: str, url: str, n: int, tokens: int) -> list[tuple[str, dict[str, object]]]:
    out = []
    for i in range(n):
        messages = [{"role": "user", "content": PROMPT.format(i=i)}]
        if kind == "corral":
            out.append(
                (
                    f"{url}/api/chat",
                    {
                        "model": "smollm2:135m",
                        "messages": messages,
                        "options": {"num_predict": tokens, "temperature": 0},
                    },
                )
            )
        else:
            out.append(
                (
                    f"{url}/v1/chat/completions",
                    {"messages": messages, "stream": True, "max_tokens": tokens, "temperature": 0},
                )
            )
    return out


async def level(kind: str, url: str, n: int, tokens: int) -> float:
    piece = ollama_piece if kind == "corral" else openai_piece
    async with httpx.AsyncClient(timeout=300) as client:
        start = time.perf_counter()
        counts = await asyncio.gather(
            *(one_stream(client, u, b, piece) for u, b in requests(kind, url, n, tokens))
        )
        return sum(counts) / (time.perf_counter() - start)


@contextmanager
def peer_server(python: str, threads: int) -> Iterator[str]:
    port = free_port()
    cmd = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2()),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        # by default a new request aborts the running one; queue them instead, as a user would
        "--interrupt_requests",
        "False",
    ]
    with process(cmd):
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{url}/v1/models", timeout=180)
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many rounds")
    parser.add_argument("--peer-python", help="a python with llama-cpp-python[server] installed")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    with ExitStack() as stack:
        urls = {
            "direct": stack.enter_context(direct_engine(4096, args.slots, args.threads)),
            "corral": stack.enter_context(
                corral_server(num_threads=str(args.threads), num_parallel=str(args.slots))
            )[0],
        }
        if args.peer_python:
            urls["llama_cpp.server"] = stack.enter_context(
                peer_server(args.peer_python, args.threads)
            )
        for kind, url in urls.items():  # warm up: load the model, fill the caches
            asyncio.run(level(kind, url, 1, 8))
        samples: dict[str, dict[int, list[float]]] = {k: {n: [] for n in levels} for k in urls}
        for repeat in range(args.repeats):
            for n in levels:
                order = list(urls) if (n + repeat) % 2 else list(urls)[::-1]
                for kind in order:
                    samples[kind][n].append(asyncio.run(level(kind, urls[kind], n, args.tokens)))
        results = {
            k: {n: statistics.median(v) for n, v in by_n.items()} for k, by_n in samples.items()
        }

    print(
        f"SmolLM2-135M Q4_1, {args.threads} threads, {args.slots} slots, "
        f"{args.tokens} tokens per stream; aggregate tokens/s, median of {args.repeats} rounds"
    )
    header = f"{'streams':>8}" + "".join(f"{k:>18}" for k in urls) + f"{'corral/direct':>15}"
    if "llama_cpp.server" in urls:
        header += f"{'corral/peer':>13}"
    print(header)
    for n in levels:
        row = f"{n:>8}" + "".join(f"{results[k][n]:>18.1f}" for k in urls)
        row += f"{results['corral'][n] / results['direct'][n]:>15.3f}"
        if "llama_cpp.server" in urls:
            row += f"{results['corral'][n] / results['llama_cpp.server'][n]:>13.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
