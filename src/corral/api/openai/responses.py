"""Pure conversions of what the native service answers into OpenAI's /v1 objects.

Whole answers (``collect_chat`` / ``collect_generate`` folds) become one object; streams go
through :class:`ChatChunks` / :class:`CompletionChunks`, which turn each native chunk into
the OpenAI chunks it stands for: a first one with the role, the text deltas, the tool calls,
a last one with the finish reason and, when asked for, a usage chunk with no choices.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from corral.api.openai.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunction,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
    ChatCompletionTopLogprob,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceLogprobs,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionFinishReason,
    CompletionLogprobs,
    CompletionUsage,
    CreateEmbeddingResponse,
    Embedding,
    EmbeddingUsage,
    FinishReason,
    Model,
    ModelList,
    PromptTokensDetails,
    ResponseMessage,
)
from corral.errors import InvalidModelName, ModelNotFound
from corral.names import parse_name
from corral.types import ChatResponse, EmbedResponse, GenerateResponse, Logprob
from corral.types import ToolCall as NativeToolCall

__all__ = [
    "ChatChunks",
    "CompletionChunks",
    "chat_completion",
    "completion",
    "completion_logprobs",
    "embedding_response",
    "find_model",
    "finish_reason",
    "model_card",
    "model_list",
    "new_id",
    "openai_logprobs",
    "openai_tool_calls",
    "usage",
]

SYSTEM_FINGERPRINT = "fp_corral"


def new_id(prefix: str) -> str:
    """``chatcmpl-…``, ``cmpl-…``, ``call_…``: random, like OpenAI's."""
    sep = "_" if prefix == "call" else "-"
    return f"{prefix}{sep}{secrets.token_hex(12)}"


def usage(native: ChatResponse | GenerateResponse) -> CompletionUsage:
    """OpenAI's usage from the native counts. The two APIs count the prompt differently:
    Ollama's ``prompt_eval_count`` (which /api keeps) is the tokens evaluated for this
    answer, while OpenAI's ``prompt_tokens`` is the whole prompt, with the part reused from
    the engine's prompt cache in ``prompt_tokens_details.cached_tokens``: evaluated + cached
    (llama-server's ``prompt_n + cache_n``), so a repeated prompt costs as many tokens as
    the first time and shows them cached."""
    cached = int(native.prompt_cached_count or 0)
    prompt = int(native.prompt_eval_count or 0) + cached
    completion = int(native.eval_count or 0)
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


def finish_reason(done_reason: str | None, *, tool_calls: bool = False) -> FinishReason:
    if tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _completion_finish(native: GenerateResponse) -> CompletionFinishReason:
    return "length" if native.done_reason == "length" else "stop"


def openai_tool_calls(
    calls: Sequence[NativeToolCall | dict[str, Any]] | None,
) -> list[ChatCompletionMessageToolCall]:
    """Native calls (argument objects) as OpenAI's (JSON text arguments, fresh ``call_`` ids)."""
    out: list[ChatCompletionMessageToolCall] = []
    for call in calls or ():
        # the service may hand on the engine's plain dicts: accept both
        data = call.model_dump() if isinstance(call, BaseModel) else call
        function = data.get("function") or {}
        arguments = function.get("arguments", {})
        if not isinstance(arguments, str):  # a string is the engine's raw, non-JSON text
            arguments = json.dumps(arguments, ensure_ascii=False)
        fn = ChatCompletionFunction(name=str(function.get("name", "")), arguments=arguments)
        out.append(ChatCompletionMessageToolCall(id=new_id("call"), function=fn))
    return out


def openai_logprobs(logprobs: Sequence[Logprob] | None) -> ChoiceLogprobs | None:
    if not logprobs:
        return None
    content = [
        ChatCompletionTokenLogprob(
            token=lp.token,
            logprob=lp.logprob,
            bytes=lp.bytes,
            top_logprobs=[
                ChatCompletionTopLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes)
                for t in lp.top_logprobs or ()
            ],
        )
        for lp in logprobs
    ]
    return ChoiceLogprobs(content=content)


def chat_completion(native: ChatResponse, *, id: str, created: int) -> ChatCompletion:
    """The folded native answer (``collect_chat``) as one chat.completion object."""
    calls = openai_tool_calls(native.message.tool_calls)
    message = ResponseMessage(
        content=native.message.content if native.message.content or not calls else None,
        tool_calls=calls or None,
        reasoning_content=native.message.thinking or None,
    )
    choice = Choice(
        message=message,
        logprobs=openai_logprobs(native.logprobs),
        finish_reason=finish_reason(native.done_reason, tool_calls=bool(calls)),
    )
    return ChatCompletion(
        id=id,
        created=created,
        model=native.model,
        choices=[choice],
        usage=usage(native),
        system_fingerprint=SYSTEM_FINGERPRINT,
    )


def completion_logprobs(
    logprobs: Sequence[Logprob] | None, offset: int = 0
) -> CompletionLogprobs | None:
    """Legacy completions' column layout; ``offset`` is where this text starts."""
    if not logprobs:
        return None
    out = CompletionLogprobs()
    for lp in logprobs:
        out.tokens.append(lp.token)
        out.token_logprobs.append(lp.logprob)
        out.top_logprobs.append({t.token: t.logprob for t in lp.top_logprobs or ()})
        out.text_offset.append(offset)
        offset += len(lp.token)
    return out


def completion(native: GenerateResponse, *, id: str, created: int) -> Completion:
    """The folded native answer (``collect_generate``) as one text_completion object."""
    choice = CompletionChoice(
        text=native.response,
        finish_reason=_completion_finish(native),
        logprobs=completion_logprobs(native.logprobs),
    )
    return Completion(
        id=id,
        created=created,
        model=native.model,
        choices=[choice],
        system_fingerprint=SYSTEM_FINGERPRINT,
        usage=usage(native),
    )


def embedding_response(native: EmbedResponse, *, encoding_format: str) -> CreateEmbeddingResponse:
    data = []
    for i, vector in enumerate(native.embeddings):
        value: list[float] | str = vector
        if encoding_format == "base64":  # OpenAI's: little-endian float32, base64
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append(Embedding(embedding=value, index=i))
    tokens = native.prompt_eval_count or 0
    return CreateEmbeddingResponse(
        data=data,
        model=native.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


# -- models -----------------------------------------------------------------------------------


def model_card(tag: dict[str, Any]) -> Model:
    """One ``/api/tags`` entry as an OpenAI model object."""
    name = str(tag["model"])
    created = int(datetime.fromisoformat(str(tag["modified_at"])).timestamp())
    return Model(id=name, created=created, owned_by=parse_name(name).namespace)


def model_list(tags: Sequence[dict[str, Any]]) -> ModelList:
    return ModelList(data=[model_card(tag) for tag in tags])


def find_model(tags: Sequence[dict[str, Any]], model_id: str) -> Model:
    """The model named ``model_id`` (``smollm2`` finds ``smollm2:latest``), else 404."""
    try:
        key = parse_name(model_id).key
    except InvalidModelName:
        raise ModelNotFound(model_id) from None  # no model can have that name
    for tag in tags:
        if parse_name(str(tag["model"])).key == key:
            return model_card(tag)
    raise ModelNotFound(model_id)


# -- streams ----------------------------------------------------------------------------------


class ChatChunks:
    """Native chat chunks -> chat.completion.chunk objects, for one streamed answer."""

    def __init__(self, *, id: str, created: int, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = id, created, model
        self.include_usage = include_usage
        self._started = False
        self._usage: CompletionUsage | None = None

    def _chunk(
        self,
        delta: ChoiceDelta,
        *,
        finish: FinishReason | None = None,
        logprobs: ChoiceLogprobs | None = None,
    ) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=finish, logprobs=logprobs)
        return ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[choice],
            system_fingerprint=SYSTEM_FINGERPRINT,
        )

    def convert(self, native: ChatResponse) -> list[ChatCompletionChunk]:
        out: list[ChatCompletionChunk] = []
        if not self._started:  # OpenAI's first chunk names the role and nothing else
            self._started = True
            out.append(self._chunk(ChoiceDelta(role="assistant", content="")))
        message = native.message
        if message.content or message.thinking or native.logprobs:
            delta = ChoiceDelta(content=message.content or None, reasoning_content=message.thinking)
            out.append(self._chunk(delta, logprobs=openai_logprobs(native.logprobs)))
        if native.done:
            calls = openai_tool_calls(message.tool_calls)
            if calls:
                deltas = [
                    ChoiceDeltaToolCall(index=i, id=c.id, function=c.function)
                    for i, c in enumerate(calls)
                ]
                out.append(self._chunk(ChoiceDelta(tool_calls=deltas)))
            reason = finish_reason(native.done_reason, tool_calls=bool(calls))
            out.append(self._chunk(ChoiceDelta(), finish=reason))
            self._usage = usage(native)
        return out

    def finish(self) -> list[ChatCompletionChunk]:
        """After the last native chunk: the usage chunk, if asked for."""
        if not (self.include_usage and self._usage):
            return []
        return [
            ChatCompletionChunk(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=[],
                usage=self._usage,
                system_fingerprint=SYSTEM_FINGERPRINT,
            )
        ]


class CompletionChunks:
    """Native generate chunks -> text_completion chunks, for one streamed answer."""

    def __init__(self, *, id: str, created: int, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = id, created, model
        self.include_usage = include_usage
        self._offset = 0
        self._usage: CompletionUsage | None = None

    def _chunk(
        self, choices: list[CompletionChoice], usage: CompletionUsage | None = None
    ) -> Completion:
        return Completion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=choices,
            system_fingerprint=SYSTEM_FINGERPRINT,
            usage=usage,
        )

    def convert(self, native: GenerateResponse) -> list[Completion]:
        out: list[Completion] = []
        if native.response or native.logprobs:
            logprobs = completion_logprobs(native.logprobs, self._offset)
            self._offset += len(native.response)
            out.append(self._chunk([CompletionChoice(text=native.response, logprobs=logprobs)]))
        if native.done:
            choice = CompletionChoice(text="", finish_reason=_completion_finish(native))
            out.append(self._chunk([choice]))
            self._usage = usage(native)
        return out

    def finish(self) -> list[Completion]:
        if not (self.include_usage and self._usage):
            return []
        return [self._chunk([], usage=self._usage)]
