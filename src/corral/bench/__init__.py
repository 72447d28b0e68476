"""``corral bench``: the same measurements for any Ollama- or OpenAI-compatible endpoint.

The library is the product; the CLI (:mod:`corral.cli.bench`) and scripts in ``benchmarks/``
are thin layers over it::

    targets = await resolve_targets(["http://127.0.0.1:11434"], "auto")
    config = BenchConfig(model="smollm2:135m", targets=targets, workload=load_workload("short"))
    results = await run_bench(config)
    doc = to_json(config, results)
"""

from corral.bench.endpoints import Api, BenchError, Sample, Target, detect_api, timed_request
from corral.bench.report import (
    LevelStats,
    PlotUnavailable,
    level_stats,
    ratios,
    ratios_table,
    results_table,
    to_json,
    write_plot,
)
from corral.bench.runner import (
    BenchConfig,
    Level,
    Progress,
    TargetResult,
    resolve_targets,
    run_bench,
)
from corral.bench.stats import Summary, percentile, summarize
from corral.bench.workload import Workload, WorkloadError, load_workload

__all__ = [
    "Api",
    "BenchConfig",
    "BenchError",
    "Level",
    "LevelStats",
    "PlotUnavailable",
    "Progress",
    "Sample",
    "Summary",
    "Target",
    "TargetResult",
    "Workload",
    "WorkloadError",
    "detect_api",
    "level_stats",
    "load_workload",
    "percentile",
    "ratios",
    "ratios_table",
    "resolve_targets",
    "results_table",
    "run_bench",
    "summarize",
    "timed_request",
    "to_json",
    "write_plot",
]
