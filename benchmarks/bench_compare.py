"""``corral bench --compare``: corral against llama-server called directly, in one run.

Starts both on SmolLM2 (llama-server with exactly the flags corral gives it: same slots,
threads and context), then runs the ``corral bench`` command with the two URLs; extra
arguments go to ``corral bench`` unchanged::

    .venv/bin/python benchmarks/bench_compare.py [--slots 4] [--threads 2] [--api openai]
        -- --concurrency 1,2,4,8 --runs 3 --max-tokens 96 --json out.json --plot out.png

``--api openai`` (the default) measures both through ``/v1/chat/completions``, the one API
they share; ``--api auto`` lets corral answer on its native ``/api/chat``.
"""

from __future__ import annotations

import argparse

from _common import corral_server, direct_engine
from corral.cli.main import main


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--api", choices=("openai", "ollama", "auto"), default="openai")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = [a for a in args.bench_args if a != "--"]
    settings = {"num_threads": str(args.threads), "num_parallel": str(args.slots)}
    with (
        direct_engine(4096, args.slots, args.threads) as direct,
        corral_server(**settings) as (corral, _),
    ):
        return main(["bench", "--url", corral, "--compare", direct, "--api", args.api,
                     "--label", "corral,llama-server", "-m", "smollm2:135m", *extra])  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(run())
