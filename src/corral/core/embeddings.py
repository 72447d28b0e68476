"""Embeddings: an embeddings-only engine instance per model, scheduled like any other.

llama-server restricts an ``--embeddings`` instance to embeddings, so a chat model used for
both gets two engines (DESIGN.md section 4); the scheduler keeps them apart by role.
"""

from __future__ import annotations

import math
import time

from corral.config import Settings
from corral.core.catalog import Catalog
from corral.core.options import load_spec, merged_options
from corral.core.scheduler import Scheduler
from corral.durations import parse_keep_alive
from corral.errors import BadRequest
from corral.store.models import LocalModel, Store
from corral.types import EmbedRequest, EmbedResponse

__all__ = ["EMBED_CONTEXT", "EmbeddingService", "shorten"]

# An embedding instance holds logits for a whole input at once (n_ctx x n_vocab floats):
# SmolLM2 needs 0.4 GiB of compute buffer at 2048 tokens, 1.6 GiB at 8192. Inputs are
# cut at this length unless the request sets num_ctx.
EMBED_CONTEXT = 2048


def shorten(vector: list[float], dimensions: int) -> list[float]:
    """Keep the first ``dimensions`` values and re-normalise (Matryoshka-style truncation)."""
    head = vector[:dimensions]
    norm = math.sqrt(sum(x * x for x in head))
    return [x / norm for x in head] if norm else head


class EmbeddingService:
    def __init__(self, settings: Settings, store: Store, scheduler: Scheduler, catalog: Catalog):
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.catalog = catalog

    def _pooling(self, model: LocalModel) -> str | None:
        """The model's own pooling if it has one (embedding models), else mean pooling."""
        info = self.catalog.gguf(model)
        return None if f"{info.architecture}.pooling_type" in info.metadata else "mean"

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        started = time.perf_counter_ns()
        model = self.store.get(request.model)
        options = merged_options(model, request.options)
        options.setdefault("num_ctx", min(self.settings.context_length, EMBED_CONTEXT))
        keep_alive = parse_keep_alive(request.keep_alive, self.settings.default_keep_alive)
        spec = load_spec(
            model,
            options,
            self.settings,
            embedding=True,
            pooling=self._pooling(model),
            context_limit=self.catalog.gguf(model).context_length,
        )
        inputs = [text for text in request.inputs if text]
        if keep_alive == 0 and not inputs:
            await self.scheduler.unload(model)
            return EmbedResponse(model=request.model, embeddings=[], total_duration=0)
        async with self.scheduler.acquire(model, spec, keep_alive) as lease:
            if not inputs:  # an empty input only loads the model, as in Ollama
                return EmbedResponse(
                    model=request.model,
                    embeddings=[],
                    total_duration=time.perf_counter_ns() - started,
                    load_duration=lease.load_duration_ns,
                )
            batch: list[str | list[int]] = []
            for text in inputs:
                # A token covers at least one byte: short inputs cannot overflow the context.
                if len(text.encode()) + 2 <= spec.num_ctx:
                    batch.append(text)
                    continue
                tokens = await lease.engine.tokenize(text)
                if len(tokens) > spec.num_ctx and not request.truncate:
                    raise BadRequest(
                        f"input length ({len(tokens)} tokens) exceeds the context length "
                        f"({spec.num_ctx}); shorten it, raise num_ctx, or set truncate to true"
                    )
                batch.append(tokens[: spec.num_ctx])
            result = await lease.engine.embed(batch)
        vectors = result.vectors
        if request.dimensions:
            vectors = [shorten(v, request.dimensions) for v in vectors]
        return EmbedResponse(
            model=request.model,
            embeddings=vectors,
            total_duration=time.perf_counter_ns() - started,
            load_duration=lease.load_duration_ns,
            prompt_eval_count=result.prompt_tokens,
        )
