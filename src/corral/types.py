"""Native wire types, shaped like Ollama's API (field names, optionality, defaults).

Requests are validated strictly enough that a wrong type is a 400 naming the field, and
leniently enough that every official client's extra fields are accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "GenerateRequest",
    "GenerateResponse",
    "Logprob",
    "Message",
    "ModelDetails",
    "Options",
    "ShowRequest",
    "ToolCall",
]

KeepAlive = float | int | str | None
Format = Literal["json", ""] | dict[str, Any] | None


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Options(BaseModel):
    """Ollama's runtime options. Unknown keys are kept (and ignored) as Ollama does."""

    model_config = ConfigDict(extra="allow")

    # load time: a change reloads the model
    num_ctx: int | None = Field(None, ge=1)
    num_batch: int | None = Field(None, ge=1)
    num_gpu: int | None = None
    main_gpu: int | None = Field(None, ge=0)
    num_thread: int | None = Field(None, ge=0)
    use_mmap: bool | None = None
    num_parallel: int | None = Field(None, ge=1)
    # speculative decoding, also at load time (see corral.core.speculative)
    draft: str | None = None
    speculative: str | None = None
    draft_max: int | None = Field(None, ge=1)
    draft_min: int | None = Field(None, ge=0)
    draft_p_min: float | None = Field(None, ge=0, le=1)
    # per request
    num_keep: int | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_last_n: int | None = None
    temperature: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    mirostat: int | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    stop: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _stop_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stop"), str):
            data = {**data, "stop": [data["stop"]]}
        return data


class ToolCallFunction(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    function: ToolCallFunction


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None


class ChatRequest(_Request):
    model: str
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    format: Format = None
    options: Options | None = None
    stream: bool | None = None
    keep_alive: KeepAlive = None
    think: bool | Literal["low", "medium", "high"] | None = None
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)
    truncate: bool | None = Field(
        None,
        description="Drop the oldest messages (never system ones, never the last) when the "
        "chat does not fit the context; false refuses such a chat with a 400. Default true.",
    )


class GenerateRequest(_Request):
    model: str
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    images: list[str] | None = None
    format: Format = None
    options: Options | None = None
    stream: bool | None = None
    raw: bool = False
    keep_alive: KeepAlive = None
    think: bool | Literal["low", "medium", "high"] | None = None
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)


class EmbedRequest(_Request):
    model: str
    input: str | list[str] = ""
    truncate: bool = True
    dimensions: int | None = Field(None, ge=1)
    options: Options | None = None
    keep_alive: KeepAlive = None

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EmbeddingsRequest(_Request):
    """The legacy /api/embeddings: one prompt, one embedding."""

    model: str
    prompt: str = ""
    options: Options | None = None
    keep_alive: KeepAlive = None


class EmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class ModelRequest(_Request):
    """A request that names one model (show, delete, pull ...); ``name`` is older clients'."""

    model: str | None = None
    name: str | None = None

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


class ShowRequest(ModelRequest):
    verbose: bool = False


class ModelDetails(BaseModel):
    parent_model: str = ""
    format: str = "gguf"
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class Logprob(TopLogprob):
    top_logprobs: list[TopLogprob] | None = None


class _Final(BaseModel):
    """Fields of the last chunk; absent from the others."""

    model: str
    created_at: datetime
    done: bool = False
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    # Ollama's count: the prompt tokens evaluated for this answer, without those reused from
    # the engine's prompt cache (a warm follow-up turn shows only its new tokens).
    prompt_eval_count: int | None = None
    # The cached part, for /v1's usage (there the prompt is evaluated + cached); not on /api.
    prompt_cached_count: int | None = Field(None, exclude=True)
    # The request's stop string that ended the answer, for Anthropic's stop_sequence; Ollama
    # says only "stop", so not on /api either.
    stop_sequence: str | None = Field(None, exclude=True)
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    logprobs: list[Logprob] | None = None


class ChatResponse(_Final):
    message: Message


class GenerateResponse(_Final):
    response: str = ""
    thinking: str | None = None
    context: list[int] | None = None
