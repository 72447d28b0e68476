"""Replicas behind the router, in one run:

1. aggregate tokens/s of 2 replicas behind the router against 1 of them called directly, at
   1/2/4/8 concurrent streams; each replica pinned to its own core with ``taskset`` (the
   engines it starts inherit the pinning) and given 1 thread and 4 slots. A second anchor,
   the same 2 replicas called directly with the streams dealt out evenly by the client, is
   what the machine gives 2 replicas at all: "router / split" is the router's own cost
   (its CPU, and any uneven spread). The three are measured in turn, ``--rounds`` times each
   (median), every round with new prompts so no prompt cache helps;
2. time to first token at turn 10 of 4 interleaved conversations through the router,
   cache-aware against round-robin (CORRAL_ROUTER_POLICY), on the same two replicas.

    .venv/bin/python benchmarks/router.py [--tokens 64] [--turns 10] [--rounds 3]

Needs at least 2 cores (``taskset -c 0`` and ``-c 1``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

import httpx

from _common import corral_server, fresh_connections

MODEL = "smollm2:135m"
STREAMS = (1, 2, 4, 8)


def warm(url: str) -> None:
    body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
    httpx.post(f"{url}/api/generate", json=body, timeout=300).raise_for_status()


def aggregate(urls: list[str], streams: int, tokens: int, tag: str) -> float:
    """Tokens/s of ``streams`` concurrent streams, each with its own conversation, dealt out
    over ``urls`` in turn."""
    counts = [0] * streams

    def one(i: int) -> None:
        body = {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": f"Story {i} ({tag}): tell a long tale about ship {i}."}
            ],
            "stream": False,
            "options": {"num_predict": tokens, "temperature": 0.8, "seed": i},
        }
        with fresh_connections(600) as client:
            url = urls[i % len(urls)]
            counts[i] = client.post(f"{url}/api/chat", json=body).json()["eval_count"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def ttft(
    client: httpx.Client, url: str, messages: list[dict[str, str]], tokens: int
) -> tuple[float, str]:
    body = {
        "model": MODEL,
        "messages": messages,
        "options": {"num_predict": tokens, "temperature": 0},
    }
    started = time.perf_counter()
    first: float | None = None
    text = []
    with client.stream("POST", f"{url}/api/chat", json=body) as response:
        for line in response.iter_lines():
            piece = httpx.Response(200, content=line).json()
            if piece.get("message", {}).get("content") and first is None:
                first = time.perf_counter() - started
            text.append(piece.get("message", {}).get("content", ""))
    return (first or time.perf_counter() - started), "".join(text)


def conversations(url: str, turns: int, tokens: int, tag: str) -> float:
    """Median TTFT at the last turn of 4 conversations interleaved turn by turn."""
    system = "You are a patient tutor. Answer in two sentences. " * 30  # a long shared start
    # ``tag`` keeps one run's conversations out of the caches the other run left behind
    chats = [
        [{"role": "system", "content": f"Conversation {c} ({tag}). {system}"}] for c in range(4)
    ]
    last: list[float] = []
    with fresh_connections(600) as client:
        for turn in range(turns):
            # conversations take turns in a different order each round, as users do (in a
            # fixed order, round-robin over 2 replicas would send each one back by accident)
            order = list(chats)
            random.Random(turn).shuffle(order)
            for chat in order:
                chat.append({"role": "user", "content": f"Question {turn}: why is the sky blue?"})
                seconds, answer = ttft(client, url, chat, tokens)
                chat.append({"role": "assistant", "content": answer})
                if turn == turns - 1:
                    last.append(seconds)
    return statistics.median(last)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="runs per point (median)")
    args = parser.parse_args()
    replica = {"num_threads": "1", "num_parallel": "4"}
    print(
        f"aggregate tokens/s (median of {args.rounds}), {args.tokens} tokens a stream; "
        "a replica: 1 core, 1 thread, 4 slots"
    )
    print(
        f"{'streams':>8}{'1 replica':>11}{'2 split':>9}{'2 + router':>12}"
        f"{'router / 1':>12}{'router / split':>16}"
    )
    with corral_server("0", **replica) as (a, _), corral_server("1", **replica) as (b, _):
        warm(a)
        warm(b)
        with corral_server(replicas=f"{a},{b}") as (router, _):
            for n in STREAMS:
                runs: dict[str, list[float]] = {"single": [], "split": [], "router": []}
                for r in range(args.rounds):  # interleaved, so drift hits all three alike
                    tag = f"{n}.{r}"
                    runs["single"].append(aggregate([a], n, args.tokens, tag))
                    runs["split"].append(aggregate([a, b], n, args.tokens, tag))
                    runs["router"].append(aggregate([router], n, args.tokens, tag))
                one, split, pair = (statistics.median(runs[k]) for k in runs)
                print(
                    f"{n:>8}{one:>11.1f}{split:>9.1f}{pair:>12.1f}"
                    f"{pair / one:>12.2f}{pair / split:>16.2f}",
                    flush=True,
                )
        print(f"\nturn-{args.turns} time to first token, 4 interleaved conversations (median)")
        results = {}
        for policy in ("round-robin", "cache-aware"):
            with corral_server(replicas=f"{a},{b}", router_policy=policy) as (router, _):
                results[policy] = conversations(router, args.turns, args.tokens // 2, policy)
            print(f"{policy:<12}{results[policy] * 1000:>9.0f} ms", flush=True)
        ratio = results["cache-aware"] / results["round-robin"]
        print(f"cache-aware / round-robin: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
