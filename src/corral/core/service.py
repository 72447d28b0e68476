"""The one native pipeline: chat and generate, Ollama-shaped in and out.

Every API surface (Ollama's /api, OpenAI's /v1) converts to these calls and back.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from corral.config import Settings
from corral.core.catalog import Catalog, capabilities
from corral.core.context import (
    answer_reserve,
    fit_messages,
    image_tokens,
    maybe_fits,
    without_images,
)
from corral.core.embeddings import EmbeddingService
from corral.core.options import generation_params, load_spec, merged_options
from corral.core.prompting import (
    engine_messages,
    native_messages,
    render_for_model,
    tool_call_stream,
)
from corral.core.scheduler import Lease, LoadedModel, Scheduler
from corral.core.speculative import Drafts
from corral.durations import parse_keep_alive
from corral.errors import UnsupportedFeature
from corral.modelfile import show_modelfile
from corral.observe import NULL_OBSERVER, Observer, observed
from corral.runner.protocol import Delta, Engine, GenerationParams, LoadSpec
from corral.store.models import LocalModel, Store
from corral.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    Logprob,
    Message,
    ToolCall,
)

__all__ = ["Service", "collect_chat", "collect_generate"]

log = logging.getLogger(__name__)


class Service:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        scheduler: Scheduler,
        catalog: Catalog | None = None,
        observer: Observer = NULL_OBSERVER,
        drafts: Drafts | None = None,
    ) -> None:
        self.settings = settings
        self.observer = observer  # time to first token and token counts (metrics)
        self.store = store
        self.scheduler = scheduler
        self.catalog = catalog or Catalog()
        self.embeddings = EmbeddingService(settings, store, scheduler, self.catalog)
        self.drafts = drafts or Drafts(store, self.catalog, settings.speculative)

    # -- models ---------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        models = sorted(self.store.list(), key=lambda m: m.modified_at, reverse=True)
        return [self.catalog.tag(m) for m in models]

    def show(self, name: str, verbose: bool = False) -> dict[str, Any]:
        """Ollama's /api/show. ``verbose`` adds nothing yet: big GGUF arrays (the tokens)
        are counted, not read, by the header reader."""
        model = self.store.get(name)
        return self.catalog.show(model, show_modelfile(self.store, model))

    def running(self) -> list[dict[str, Any]]:
        by_model: dict[str, list[LoadedModel]] = {}
        for loaded in self.scheduler.running():
            by_model.setdefault(loaded.model.digest, []).append(loaded)
        return [self.catalog.running(engines) for engines in by_model.values()]

    # -- inference ------------------------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        return await self.embeddings.embed(request)

    def _check(
        self, model: LocalModel, *, tools: bool, images: bool, think: bool, insert: bool = False
    ) -> None:
        caps = capabilities(self.catalog.gguf(model), model)
        name = model.name.display
        if insert and "insert" not in caps:
            raise UnsupportedFeature(f'"{name}" does not support insert')
        if tools and "tools" not in caps:
            raise UnsupportedFeature(f'"{name}" does not support tools')
        if images and "vision" not in caps:
            raise UnsupportedFeature(f'"{name}" does not support images')
        if think and "thinking" not in caps:
            raise UnsupportedFeature(f'"{name}" does not support thinking')

    def _check_chat(self, model: LocalModel, request: ChatRequest) -> None:
        self._check(
            model,
            tools=bool(request.tools),
            images=any(m.images for m in request.messages),
            think=bool(request.think),
        )

    async def _load_only(
        self, model: LocalModel, keep_alive: float | None, spec_options: dict[str, Any]
    ) -> tuple[str, int]:
        """An empty prompt loads the model; with keep_alive 0 it unloads it."""
        if keep_alive == 0:
            await self.scheduler.unload(model)
            return "unload", 0
        spec = self._load_spec(model, spec_options)
        async with self.scheduler.acquire(model, spec, keep_alive) as lease:
            return "load", lease.load_duration_ns

    def _load_spec(self, model: LocalModel, options: dict[str, Any]) -> LoadSpec:
        return load_spec(
            model,
            options,
            self.settings,
            speculation=self.drafts.resolve(model, options),
            context_limit=self.catalog.gguf(model).context_length,
        )

    def _keep_alive(self, value: float | int | str | None) -> float | None:
        return parse_keep_alive(value, self.settings.default_keep_alive)

    def _params(
        self, options: dict[str, Any], request: ChatRequest | GenerateRequest
    ) -> GenerationParams:
        return generation_params(
            options,
            request.format,
            logprobs=request.logprobs,
            top_logprobs=request.top_logprobs,
            think=request.think,
        )

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatResponse]:
        started = time.perf_counter_ns()
        model = self.store.get(request.model)
        name = request.model
        options = merged_options(model, request.options)
        keep_alive = self._keep_alive(request.keep_alive)
        if not request.messages:
            reason, load_ns = await self._load_only(model, keep_alive, options)
            yield ChatResponse(
                model=name,
                created_at=datetime.now(UTC),
                message=Message(role="assistant"),
                done=True,
                done_reason=reason,
                total_duration=time.perf_counter_ns() - started,
                load_duration=load_ns,
            )
            return
        self._check_chat(model, request)
        spec = self._load_spec(model, options)
        params = self._params(options, request)
        native = native_messages(model, request.messages)
        calls = tool_call_stream(model, request.tools) if model.template and request.tools else None
        async with self.scheduler.acquire(model, spec, keep_alive) as lease:
            prompt: str | None = None
            if request.truncate is not False:
                native, prompt = await self._fit_context(
                    model, lease.engine, native, request, options
                )
            if model.template:
                if prompt is None:
                    prompt = await render_for_model(model, native, request.tools, request.think)
                stream = lease.engine.complete(prompt, params)
            else:
                stream = lease.engine.chat(engine_messages(native), params, request.tools)
            stream = observed(stream, self.observer, model.name.display, started)
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    content = calls.feed(delta.content) if calls else delta.content
                    message = Message(
                        role="assistant", content=content, thinking=delta.thinking or None
                    )
                    if not delta.done:
                        if content or delta.thinking or not calls:
                            yield ChatResponse(
                                model=name,
                                created_at=datetime.now(UTC),
                                message=message,
                                logprobs=_logprobs(delta),
                            )
                        continue
                    tool_calls = [ToolCall.model_validate(c) for c in delta.tool_calls]
                    if calls:
                        parsed = calls.finish()
                        message.content += parsed.content
                        tool_calls = parsed.tool_calls
                    message.tool_calls = tool_calls or None
                    yield ChatResponse(
                        model=name,
                        created_at=datetime.now(UTC),
                        message=message,
                        **_final(delta, lease, started),
                    )

    async def count_tokens(self, request: ChatRequest) -> int:
        """The tokens ``request``'s messages and tools take once rendered by the model's
        template, counted by its engine (loaded if it is not): what the chat would send."""
        model = self.store.get(request.model)
        options = merged_options(model, request.options)
        self._check_chat(model, request)
        spec = self._load_spec(model, options)
        native = native_messages(model, request.messages)
        keep_alive = self._keep_alive(request.keep_alive)
        async with self.scheduler.acquire(model, spec, keep_alive) as lease:
            if model.template:
                prompt = await render_for_model(model, native, request.tools, request.think)
            else:
                plain = engine_messages(without_images(native))
                prompt = await lease.engine.apply_template(plain, request.tools)
            return len(await lease.engine.tokenize(prompt))

    async def _fit_context(
        self,
        model: LocalModel,
        engine: Engine,
        native: list[dict[str, Any]],
        request: ChatRequest,
        options: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The messages that fit the engine's context (see :mod:`corral.core.context`), and
        the prompt they render to when the count already rendered it (own TEMPLATE only)."""
        num_ctx = engine.spec.num_ctx
        reserve = answer_reserve(options.get("num_predict"), num_ctx)
        budget = num_ctx - reserve
        if maybe_fits(native, request.tools, budget):
            return native, None
        vision = engine.spec.projector_path is not None
        rendered: dict[int, str] = {}  # by length: the candidates are suffixes of one list

        async def count(candidate: list[dict[str, Any]]) -> int:
            if model.template:
                text = await render_for_model(model, candidate, request.tools, request.think)
                rendered[len(candidate)] = text
            else:
                plain = engine_messages(without_images(candidate))
                text = await engine.apply_template(plain, request.tools)
            extra = image_tokens(candidate) if vision else 0
            # every token covers at least one byte; one more for a BOS the engine may add
            if len(text.encode()) + 1 + extra <= budget:
                return len(text.encode()) + 1 + extra
            return len(await engine.tokenize(text)) + 1 + extra

        kept = await fit_messages(
            native, count, num_ctx=num_ctx, reserve=reserve, limit=engine.spec.context_limit
        )
        if len(kept) < len(native):
            log.info(
                "%s: dropped the %d oldest of %d messages to fit num_ctx %d",
                model.name.display,
                len(native) - len(kept),
                len(native),
                num_ctx,
            )
        return kept, rendered.get(len(kept))

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerateResponse]:
        started = time.perf_counter_ns()
        model = self.store.get(request.model)
        name = request.model
        options = merged_options(model, request.options)
        keep_alive = self._keep_alive(request.keep_alive)
        if not request.prompt and not request.images and not request.suffix:
            reason, load_ns = await self._load_only(model, keep_alive, options)
            yield GenerateResponse(
                model=name,
                created_at=datetime.now(UTC),
                done=True,
                done_reason=reason,
                total_duration=time.perf_counter_ns() - started,
                load_duration=load_ns,
            )
            return
        if request.template:
            raise UnsupportedFeature(
                "a per-request template is not supported: the model's own chat template is used "
                'unless you set "raw": true and format the prompt yourself'
            )
        self._check(
            model,
            tools=False,
            images=bool(request.images),
            think=bool(request.think),
            insert=bool(request.suffix),
        )
        spec = self._load_spec(model, options)
        params = self._params(options, request)
        system = request.system if request.system is not None else model.system
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": request.prompt})
        if request.images:
            messages[-1]["images"] = request.images
        async with self.scheduler.acquire(model, spec, keep_alive) as lease:
            engine = lease.engine
            prompt = ""  # the templated prompt, for ``context``
            if request.suffix:
                stream = engine.infill(request.prompt, request.suffix, params)
            elif request.raw:
                stream = engine.complete(request.prompt, params)
            elif request.context or model.template:
                # our own TEMPLATE, or an earlier exchange's tokens before this turn's prompt
                turn = (
                    await render_for_model(model, messages, None, request.think)
                    if model.template
                    else await engine.apply_template(engine_messages(messages))
                )
                prompt = (
                    await engine.detokenize(request.context) if request.context else ""
                ) + turn
                stream = engine.complete(prompt, params)
            else:
                stream = engine.chat(engine_messages(messages), params, None)
            stream = observed(stream, self.observer, model.name.display, started)
            answer: list[str] = []
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    answer.append(delta.content)
                    if not delta.done:
                        yield GenerateResponse(
                            model=name,
                            created_at=datetime.now(UTC),
                            response=delta.content,
                            thinking=delta.thinking or None,
                            logprobs=_logprobs(delta),
                        )
                        continue
                    context = None
                    if not request.raw and not request.suffix:
                        prompt = prompt or await engine.apply_template(engine_messages(messages))
                        context = await engine.tokenize(prompt + "".join(answer))
                    yield GenerateResponse(
                        model=name,
                        created_at=datetime.now(UTC),
                        response=delta.content,
                        context=context,
                        **_final(delta, lease, started),
                    )


def _logprobs(delta: Delta) -> list[Logprob] | None:
    return [Logprob.model_validate(p) for p in delta.logprobs] if delta.logprobs else None


def _final(delta: Delta, lease: Lease, started_ns: int) -> dict[str, Any]:
    return {
        "done": True,
        "done_reason": delta.done_reason or "stop",
        "total_duration": time.perf_counter_ns() - started_ns,
        "load_duration": lease.load_duration_ns,
        "prompt_eval_count": delta.prompt_tokens,
        "prompt_cached_count": delta.cached_tokens,
        "stop_sequence": delta.stop_word,
        "prompt_eval_duration": int(delta.prompt_ms * 1_000_000),
        "eval_count": delta.eval_tokens,
        "eval_duration": int(delta.eval_ms * 1_000_000),
    }


async def collect_chat(stream: AsyncIterator[ChatResponse]) -> ChatResponse:
    """Fold a stream into the single object ``stream: false`` answers with."""
    content: list[str] = []
    thinking: list[str] = []
    logprobs: list[Logprob] = []
    last: ChatResponse | None = None
    async for chunk in stream:
        content.append(chunk.message.content)
        thinking.append(chunk.message.thinking or "")
        logprobs.extend(chunk.logprobs or ())
        last = chunk
    assert last is not None, "the service always ends a stream with a done chunk"
    last.message.content = "".join(content)
    last.message.thinking = "".join(thinking) or None
    last.logprobs = logprobs or None
    return last


async def collect_generate(stream: AsyncIterator[GenerateResponse]) -> GenerateResponse:
    response: list[str] = []
    thinking: list[str] = []
    logprobs: list[Logprob] = []
    last: GenerateResponse | None = None
    async for chunk in stream:
        response.append(chunk.response)
        thinking.append(chunk.thinking or "")
        logprobs.extend(chunk.logprobs or ())
        last = chunk
    assert last is not None, "the service always ends a stream with a done chunk"
    last.response = "".join(response)
    last.thinking = "".join(thinking) or None
    last.logprobs = logprobs or None
    return last
