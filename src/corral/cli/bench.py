"""``corral bench``: measure an Ollama- or OpenAI-compatible endpoint (or two, alternately).

:func:`add_parser` runs for every command, so this module imports nothing heavy at the top;
the work is in :mod:`corral.bench`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.cli.main import CommandError, Context

if TYPE_CHECKING:
    from rich.console import Console

    from corral.bench import BenchConfig, TargetResult

__all__ = ["add_parser", "bench", "parse_levels"]

HELP = """\
Sends streaming chat requests (temperature 0, a distinct prompt each) after one warm-up
request per endpoint, in rounds of N simultaneous requests for each concurrency level N,
--runs rounds per level. Everything is timed at the client, so any server is measured the
same way: corral, Ollama, llama-server, vLLM, Docker Model Runner.

  TTFT            request sent -> first piece of content
  prompt tok/s    the server's prompt token count / TTFT
  gen tok/s       per stream: (generated tokens - 1) / (last piece - first piece)
  aggregate tok/s per round: its tokens / its wall time; the median of the rounds

With --compare, rounds alternate between the two endpoints and ratios (first / second)
are printed. --api auto asks /api/version (Ollama) then /v1/models (OpenAI); a URL
ending in /v1 is taken as OpenAI. OpenAI endpoints are asked for usage in the stream
(stream_options.include_usage); without it, content chunks are counted as tokens.
"""


def parse_levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or any(n < 1 for n in levels):
        raise argparse.ArgumentTypeError("concurrency levels must be numbers of at least 1")
    return levels


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "bench",
        help="Benchmark an Ollama- or OpenAI-compatible endpoint",
        description="Measure time to first token and tokens/s of a model behind an endpoint.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--url", help="endpoint (default: this corral server, CORRAL_HOST)")
    cmd.add_argument("--api", choices=("ollama", "openai", "auto"), default="auto")
    cmd.add_argument("-m", "--model", required=True, help="model name as the endpoint knows it")
    cmd.add_argument(
        "--concurrency", type=parse_levels, default=(1, 2, 4, 8), metavar="N[,N...]",
        help="simultaneous requests per level (default 1,2,4,8)",
    )  # fmt: skip
    cmd.add_argument(
        "--prompt-set", default="short", metavar="short|long|FILE",
        help="built-in prompts, or a file with one prompt per line (.json: a list of strings)",
    )  # fmt: skip
    cmd.add_argument("--runs", type=_positive, default=3, help="rounds per level (default 3)")
    cmd.add_argument(
        "--max-tokens", type=_positive, default=128, help="tokens to generate (default 128)"
    )
    cmd.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    cmd.add_argument("--plot", type=Path, metavar="FILE.png", help="write a PNG chart")
    cmd.add_argument("--compare", metavar="URL2", help="a second endpoint, measured alternately")
    cmd.add_argument(
        "--label", metavar="NAME[,NAME2]", help="names for the endpoints in the report"
    )
    cmd.add_argument(
        "--api-key", default=os.environ.get("CORRAL_BENCH_API_KEY"),
        help="Bearer token to send (default: $CORRAL_BENCH_API_KEY)",
    )  # fmt: skip
    cmd.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per request (default 300)"
    )
    cmd.set_defaults(handler="bench:bench")


def bench(args: argparse.Namespace, ctx: Context) -> int:
    import asyncio

    from rich.console import Console

    from corral.address import client_base_url
    from corral.bench import (
        BenchConfig,
        BenchError,
        PlotUnavailable,
        WorkloadError,
        load_workload,
        ratios_table,
        resolve_targets,
        results_table,
        to_json,
        write_plot,
    )

    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "--plot needs matplotlib: pip install 'corral[bench]' (or pip install matplotlib)"
        )
    try:
        workload = load_workload(args.prompt_set)
    except WorkloadError as exc:
        raise CommandError(str(exc)) from None
    urls = [args.url or client_base_url()] + ([args.compare] if args.compare else [])
    labels = [x.strip() for x in args.label.split(",")] if args.label else []
    out = Console()
    if not out.is_terminal:
        out = Console(width=120)  # a file or a pipe: don't squeeze the table into 80 columns
    err = Console(stderr=True)
    try:
        targets = asyncio.run(resolve_targets(urls, args.api, args.api_key, labels))
        config = BenchConfig(
            model=args.model,
            targets=targets,
            workload=workload,
            concurrency=args.concurrency,
            runs=args.runs,
            max_tokens=args.max_tokens,
            timeout=args.timeout,
        )
        for t in targets:
            err.print(f"[dim]{t.label}: {t.url} ({t.api} API)[/dim]")
        results = asyncio.run(_run_with_progress(config, err))
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    out.print(results_table(results))
    if len(results) == 2:
        out.print(ratios_table(results[0], results[1]))
    doc = to_json(config, results)
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        err.print(f"wrote {args.json}")
    if args.plot is not None:
        try:
            write_plot(results, args.plot, title=f"{args.model}, {workload.name} prompts")
        except PlotUnavailable as exc:
            raise CommandError(str(exc)) from None
        err.print(f"wrote {args.plot}")
    failed = sum(lv["errors"] for t in doc["targets"] for lv in t["levels"])
    if failed:
        print(f"{failed} request(s) failed; see errors_seen in --json", file=sys.stderr)
    return 0


async def _run_with_progress(config: BenchConfig, console: Console) -> list[TargetResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from corral.bench import Progress as BenchProgress
    from corral.bench import run_bench

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        total = config.runs * sum(config.concurrency)
        tasks = {
            t.label: bar.add_task(t.label, total=total, note="warming up") for t in config.targets
        }

        def update(event: BenchProgress) -> None:
            note = (
                "warm"
                if event.stage == "warmup"
                else f"c={event.concurrency} errors={event.errors}"
            )
            bar.update(tasks[event.label], completed=event.done, note=note)

        return await run_bench(config, update)
