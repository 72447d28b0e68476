"""What the rest of corral knows about an engine: a load spec, sampling parameters, and a
stream of deltas. Only ``corral.runner`` knows llama-server's flags and endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Delta", "Embeddings", "Engine", "EngineFactory", "GenerationParams", "LoadSpec"]


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Everything fixed when a model is loaded; a request needing another spec reloads it."""

    model_path: Path
    num_ctx: int  # context per slot; the engine gets num_ctx * num_parallel
    context_limit: int | None = None  # the model's training context, which num_ctx stays within
    num_parallel: int = 1
    num_batch: int | None = None
    num_gpu: int | None = None  # layers to offload; None = engine default
    main_gpu: int | None = None
    tensor_split: tuple[int, ...] | None = None  # layers per GPU when split across several
    num_thread: int | None = None
    use_mmap: bool = True
    projector_path: Path | None = None
    rpc_workers: tuple[str, ...] = ()  # host:port of llama.cpp RPC workers holding layers
    embedding: bool = False  # an embeddings-only instance (llama-server --embeddings)
    pooling: str | None = None  # for embedding instances of models without their own pooling
    # Speculative decoding: a draft model's file, or one of the engine's n-gram types
    # ("ngram-mod", ...); the draft_* bounds apply to a draft model.
    draft_path: Path | None = None
    speculative: str | None = None
    draft_max: int | None = None
    draft_min: int | None = None
    draft_p_min: float | None = None
    label: str = ""  # model name, for logs and error messages


@dataclass(slots=True)
class GenerationParams:
    """Per-request sampling, already mapped from Ollama's option names (see core.options).

    ``sampling`` holds llama-server's own parameter names (temperature, top_k, top_p, min_p,
    repeat_penalty, repeat_last_n, seed, n_predict, stop, presence_penalty, frequency_penalty,
    typical_p, mirostat, mirostat_tau, mirostat_eta, n_keep).
    """

    sampling: dict[str, Any] = field(default_factory=dict)
    json_schema: dict[str, Any] | None = None  # format: <schema>
    json_mode: bool = False  # format: "json"
    top_logprobs: int | None = None  # None: no logprobs; n >= 0: logprobs with n alternatives
    think: bool | str | None = None  # None: the template's default; a level for some models


@dataclass(slots=True)
class Delta:
    """One piece of a streamed answer. The last one has ``done=True`` and the timings."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None  # "stop" or "length"
    stop_word: str | None = None  # the request's stop string that ended the answer, if one did
    prompt_tokens: int = 0  # evaluated for this answer; the prompt is these plus the cached
    cached_tokens: int = 0  # reused from the engine's prompt cache, not evaluated again
    prompt_ms: float = 0.0
    eval_tokens: int = 0
    eval_ms: float = 0.0
    draft_tokens: int = 0  # speculative decoding: tokens proposed, and how many were kept
    draft_accepted: int = 0
    logprobs: list[dict[str, Any]] = field(default_factory=list)  # Ollama's shape


@dataclass(slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class Engine(Protocol):
    """A loaded model in a running engine process."""

    spec: LoadSpec

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: GenerationParams,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncGenerator[Delta, None]:
        """Apply the model's chat template to ``messages`` and stream the answer."""
        ...

    def complete(self, prompt: str, params: GenerationParams) -> AsyncGenerator[Delta, None]:
        """Stream a continuation of a raw ``prompt`` (no template)."""
        ...

    def infill(
        self, prefix: str, suffix: str, params: GenerationParams
    ) -> AsyncGenerator[Delta, None]:
        """Fill in the middle between ``prefix`` and ``suffix`` (models with FIM tokens)."""
        ...

    async def embed(self, inputs: list[str | list[int]]) -> Embeddings:
        """L2-normalised embeddings of texts or token lists (embedding instances only)."""
        ...

    async def tokenize(self, text: str) -> list[int]:
        """The model's tokens for ``text`` (special tokens such as ``<|im_start|>`` parsed,
        no BOS added): how much of the context a rendered prompt takes."""
        ...

    async def detokenize(self, tokens: list[int]) -> str: ...

    async def apply_template(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> str:
        """The prompt the model's chat template makes of ``messages``."""
        ...

    def is_alive(self) -> bool: ...

    async def healthy(self) -> bool:
        """The process is up and answers its health check in time."""
        ...

    async def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL) and wait for it."""
        ...


EngineFactory = Callable[[LoadSpec], Awaitable[Engine]]
"""Starts an engine for a spec and returns it once healthy; raises EngineStartError."""
