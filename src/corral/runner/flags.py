"""The llama-server command line for a :class:`LoadSpec` (checked against its ``--help``)."""

from __future__ import annotations

from corral.runner.protocol import LoadSpec

__all__ = ["CACHE_REUSE_CHUNK", "server_args"]

CACHE_REUSE_CHUNK = 256
"""Smallest run of tokens the engine moves (KV shifting) to reuse a cached prompt that no
longer shares a plain prefix with the new one, e.g. after the client dropped old messages.
A common prefix is reused anyway: prompt caching (``cache_prompt``) is on by default."""


def server_args(spec: LoadSpec, port: int) -> list[str]:
    """Arguments (without the binary) that serve ``spec`` on ``127.0.0.1:port``."""
    num_parallel = max(1, spec.num_parallel)
    args = [
        "--host", "127.0.0.1",
        "--port", str(port),
        "-m", str(spec.model_path),
        "--jinja",  # the model's own chat template; needed for tools and reasoning_content
        # -np slots, each with num_ctx tokens: without a unified KV cache the engine splits -c
        "-c", str(spec.num_ctx * num_parallel),
        "-np", str(num_parallel),
        "--cache-reuse", str(CACHE_REUSE_CHUNK),
        "--no-webui",
        "--metrics",
        "--log-colors", "off",
    ]  # fmt: skip
    if spec.num_thread:
        args += ["-t", str(spec.num_thread)]
    if spec.num_batch:
        args += ["-b", str(spec.num_batch)]
    if spec.num_gpu is not None:
        # An explicit layer count (ours or the user's): the engine's own --fit must not move it.
        args += ["-ngl", str(spec.num_gpu), "--fit", "off"]
    if spec.rpc_workers:  # the engine lists them as devices before any local GPU
        args += ["--rpc", ",".join(spec.rpc_workers)]
    if spec.tensor_split:
        args += ["--tensor-split", ",".join(map(str, spec.tensor_split))]
    if spec.main_gpu is not None:
        args += ["-mg", str(spec.main_gpu)]
    if not spec.use_mmap:
        # this llama-server has no --no-mmap: "none" reads the weights instead of mapping them
        args += ["--load-mode", "none"]
    if spec.embedding:
        # Embedding models see the whole input at once: it must fit one micro-batch.
        args += ["--embeddings", "-b", str(spec.num_ctx), "-ub", str(spec.num_ctx)]
        if spec.pooling:
            args += ["--pooling", spec.pooling]
    if spec.projector_path is not None:
        args += ["--mmproj", str(spec.projector_path)]
    return args + _speculative_args(spec)


def _speculative_args(spec: LoadSpec) -> list[str]:
    """A draft model needs ``--spec-type draft-simple`` too: ``-md`` alone loads the draft and
    never uses it (checked: no ``draft_n`` in the timings)."""
    if spec.draft_path is not None:
        args = ["--spec-type", "draft-simple", "-md", str(spec.draft_path)]
        if spec.draft_max is not None:
            args += ["--spec-draft-n-max", str(spec.draft_max)]
        if spec.draft_min is not None:
            args += ["--spec-draft-n-min", str(spec.draft_min)]
        if spec.draft_p_min is not None:
            args += ["--spec-draft-p-min", str(spec.draft_p_min)]
        if spec.num_gpu == 0:  # a CPU-only target keeps its draft on the CPU too
            args += ["-ngld", "0"]
        return args
    if spec.speculative:
        return ["--spec-type", spec.speculative]
    return []
