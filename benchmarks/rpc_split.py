"""One model split over two llama.cpp RPC workers on loopback against the same model local,
in one run, through corral: generation tokens/s (the engine's timing) and the bytes on the
workers' connections per token processed (prompt and generated; counted around each request,
so the weights sent once at load are left out).

    .venv/bin/python benchmarks/rpc_split.py [--runs 3] [--tokens 128] [--threads 1]

On one machine the workers share its cores with the engine: this measures what the split
costs (per-token round trips over TCP), not what more machines add.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _common import corral_server, fresh_connections
from corral.runner.process import free_port
from corral.runner.rpc import reachable

PROMPT = "Tell a long story about a lighthouse keeper and a message in a bottle. (take {i})"


def start_worker(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    home = tempfile.mkdtemp(prefix="bench-worker-")
    cmd = [sys.executable, "-m", "corral", "worker", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--threads", str(threads)],
        env={"CORRAL_HOME": home, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{port}"
    while not reachable(endpoint):
        time.sleep(0.1)
    return proc, endpoint


def socket_bytes(ports: list[int]) -> int:
    """Bytes sent and received on the workers' TCP connections (``ss``'s tcp_info): the
    engine talks to its workers with send/recv, which /proc/PID/io does not count."""
    if not ports:
        return 0
    out = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True, text=True)
    total, counting = 0, False
    for line in out.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            local = line.split()[2] if len(line.split()) > 2 else ""
            counting = any(local.endswith(f":{port}") for port in ports)
            continue
        if counting:
            for key in ("bytes_acked", "bytes_received"):
                found = re.search(rf"\b{key}:(\d+)", line)
                total += int(found.group(1)) if found else 0
    return total


def measure(url: str, args: argparse.Namespace, ports: list[int]) -> tuple[float, float]:
    rates, per_token = [], []
    with fresh_connections(600) as client:
        for i in range(args.runs + 1):  # the first loads the model
            before = socket_bytes(ports)
            body = {
                "model": "smollm2:135m",
                "prompt": PROMPT.format(i=i),
                "stream": False,
                "options": {"num_predict": args.tokens, "temperature": 0, "seed": 1},
            }
            data = client.post(f"{url}/api/generate", json=body).json()
            moved = socket_bytes(ports) - before
            if i:
                rates.append(data["eval_count"] / (data["eval_duration"] / 1e9))
                per_token.append(moved / max(data["eval_count"] + data["prompt_eval_count"], 1))
    return statistics.median(rates), statistics.median(per_token)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.tokens} tokens, {args.runs} runs (medians), {args.threads} thread(s) each")
    print(f"{'setup':<26}{'gen tok/s':>10}{'ratio':>7}{'bytes/token':>13}")
    with corral_server(num_threads=str(args.threads)) as (url, _):
        local, _ = measure(url, args, [])
    print(f"{'local':<26}{local:>10.1f}{1.0:>7.2f}{'-':>13}")
    workers = [start_worker(args.threads) for _ in range(2)]
    try:
        endpoints = ",".join(endpoint for _, endpoint in workers)
        settings = {"num_threads": str(args.threads), "rpc_workers": endpoints}
        with corral_server(**settings) as (url, _):
            ports = [int(endpoint.rsplit(":", 1)[1]) for _, endpoint in workers]
            split, moved = measure(url, args, ports)
        print(f"{'2 RPC workers (loopback)':<26}{split:>10.1f}{split / local:>7.2f}{moved:>13,.0f}")
    finally:
        for proc, _ in workers:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
