"""Ollama options -> engine load spec and sampling parameters (pure functions).

Precedence, as in Ollama: request options over the model's Modelfile parameters over
server settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.config import Settings
from corral.errors import InvalidOption
from corral.runner.protocol import GenerationParams, LoadSpec
from corral.store.models import LocalModel
from corral.types import Format, Options

if TYPE_CHECKING:
    from corral.core.speculative import Speculation

__all__ = ["generation_params", "held_num_ctx", "load_spec", "merged_options"]

# Ollama option name -> llama-server parameter name.
_SAMPLING = {
    "num_keep": "n_keep",
    "seed": "seed",
    "num_predict": "n_predict",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "repeat_last_n": "repeat_last_n",
    "temperature": "temperature",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "mirostat": "mirostat",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
    "stop": "stop",
}


def merged_options(model: LocalModel, options: Options | None) -> dict[str, Any]:
    """The model's stored parameters overlaid with the request's options."""
    merged: dict[str, Any] = dict(model.params)
    if options is not None:
        merged.update(options.model_dump(exclude_none=True))
    return merged


def held_num_ctx(num_ctx: int, context_limit: int | None) -> int:
    """num_ctx held to the model's training context (its GGUF header's context_length), as
    Ollama does: llama-server gives no slot more than that, so a larger num_ctx would only
    reserve KV cache no request can use, and make corral's own context fitting count on
    room the engine does not have."""
    return min(num_ctx, context_limit) if context_limit else num_ctx


def load_spec(
    model: LocalModel,
    options: dict[str, Any],
    settings: Settings,
    *,
    embedding: bool = False,
    pooling: str | None = None,
    speculation: Speculation | None = None,
    context_limit: int | None = None,
) -> LoadSpec:
    """``context_limit``: the model's training context; see :func:`held_num_ctx`."""
    num_ctx = int(options.get("num_ctx") or settings.context_length)
    if num_ctx < 16:
        raise InvalidOption(f"num_ctx must be at least 16, got {num_ctx}")
    num_ctx = held_num_ctx(num_ctx, context_limit)
    thread = options.get("num_thread") or settings.num_threads
    speculation = None if embedding else speculation  # embeddings generate nothing to guess
    draft = speculation.draft if speculation else None
    return LoadSpec(
        model_path=model.model_path,
        num_ctx=num_ctx,
        context_limit=context_limit or None,
        num_parallel=int(options.get("num_parallel") or settings.num_parallel),
        num_batch=options.get("num_batch"),
        num_gpu=options.get("num_gpu"),
        main_gpu=options.get("main_gpu"),
        num_thread=int(thread) if thread else None,
        use_mmap=bool(options.get("use_mmap", True)),
        projector_path=None if embedding else model.projector_path,
        embedding=embedding,
        pooling=pooling,
        draft_path=draft.model_path if draft else None,
        speculative=speculation.ngram if speculation else None,
        draft_max=speculation.draft_max if speculation else None,
        draft_min=speculation.draft_min if speculation else None,
        draft_p_min=speculation.draft_p_min if speculation else None,
        label=model.name.display,
    )


def generation_params(
    options: dict[str, Any],
    fmt: Format,
    *,
    logprobs: bool = False,
    top_logprobs: int = 0,
    think: bool | str | None = None,
) -> GenerationParams:
    sampling = {_SAMPLING[key]: value for key, value in options.items() if key in _SAMPLING}
    # Ollama: -1 = until done, -2 = fill the context; llama-server: -1 = until done.
    if sampling.get("n_predict", 0) < 0:
        sampling["n_predict"] = -1
    return GenerationParams(
        sampling=sampling,
        json_schema=fmt if isinstance(fmt, dict) else None,
        json_mode=fmt == "json",
        top_logprobs=top_logprobs if logprobs else None,
        think=think,
    )
