"""Time to first token of turn 10 of a conversation against the same history sent cold.

Turns 1-9 go through corral one after another (the engine keeps the conversation's prefix
in its prompt cache); turn 10 is timed. The cold run sends the same history with a mark at the
start of every message, so nothing of it can come from the cache.

    .venv/bin/python benchmarks/conversation.py [--turns 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from _common import corral_server, fresh_connections

QUESTION = (
    "Turn {i}. Here are my notes so far: lighthouses guided ships past reefs and headlands; "
    "the Pharos of Alexandria stood for centuries; keepers trimmed wicks, wound clockwork "
    "and logged the weather; Fresnel lenses bent the light into beams seen far out at sea; "
    "fog signals, from bells to sirens, warned ships when the light could not be seen; "
    "automation and satellite navigation later made most keepers unnecessary. "
    "Tell me one more detailed fact about the history of lighthouses, in about six "
    "sentences, and do not repeat earlier facts."
)


def chat(
    client: httpx.Client, url: str, messages: list[dict[str, str]], tokens: int
) -> tuple[float, str, dict[str, int]]:
    """(ms to first piece, answer, final chunk's counts)."""
    start = time.perf_counter()
    first = 0.0
    answer: list[str] = []
    final: dict[str, int] = {}
    body = {
        "model": "smollm2:135m",
        "messages": messages,
        "options": {"num_predict": tokens, "temperature": 0, "num_ctx": 4096},
    }
    with client.stream("POST", f"{url}/api/chat", json=body) as response:
        for line in response.iter_lines():
            chunk = json.loads(line)
            piece = chunk.get("message", {}).get("content", "")
            if piece and not first:
                first = (time.perf_counter() - start) * 1000
            answer.append(piece)
            if chunk.get("done"):
                final = chunk
    return first, "".join(answer), final


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--answer-tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    warm_ms, cold_ms = [], []
    with (
        corral_server(num_threads=str(args.threads)) as (url, _),
        fresh_connections(300) as client,
    ):
        history: list[dict[str, str]] = [
            {"role": "system", "content": "You are a patient historian."}
        ]
        for i in range(1, args.turns):
            history.append({"role": "user", "content": QUESTION.format(i=i)})
            _, answer, _ = chat(client, url, history, args.answer_tokens)
            history.append({"role": "assistant", "content": answer})
        for r in range(args.repeats):
            # The engine's cache holds the history, as after turn 9 (a cold run replaced it).
            chat(client, url, [*history, {"role": "user", "content": "Prime."}], 1)
            turn = {"role": "user", "content": QUESTION.format(i=f"{args.turns}.{r}")}
            ttft, _, warm_final = chat(client, url, [*history, turn], 8)
            warm_ms.append(ttft)
            # Cold: the same conversation with a mark at the start of every message, so that
            # no run of 256 tokens (the engine's --cache-reuse chunk) can come from the cache.
            # The mark differs per repeat: the engine also keeps earlier prompts in RAM.
            marked = [{**m, "content": f"~{r} {m['content']}"} for m in [*history, turn]]
            ttft, _, cold_final = chat(client, url, marked, 8)
            cold_ms.append(ttft)
    history_tokens = cold_final["prompt_eval_count"]
    warm, cold = statistics.median(warm_ms), statistics.median(cold_ms)
    print(
        f"SmolLM2-135M Q4_1, {args.threads} threads; turn {args.turns} with "
        f"{history_tokens} tokens of history; median of {args.repeats}"
    )
    print(
        f"warm (prompt cache): {warm:8.1f} ms TTFT, "
        f"prompt_eval_count {warm_final['prompt_eval_count']}"
    )
    print(
        f"cold (same history): {cold:8.1f} ms TTFT, "
        f"prompt_eval_count {cold_final['prompt_eval_count']}"
    )
    print(f"warm/cold: {warm / cold:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
