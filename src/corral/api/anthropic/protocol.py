"""The parts of Anthropic's Messages API that corral reads and writes, as pydantic models.

Requests forbid fields corral does not know, so a feature it cannot honour (``container``,
``mcp_servers``, ...) is a 400 that names it rather than silently dropped. Content blocks
keep hints such as ``cache_control`` and ``citations`` out of the way (ignored): they change
nothing about the answer a local engine gives.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageSource(BaseModel):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Block(BaseModel):
    """Any content block; which fields a type needs is checked by the conversion."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None


class InputMessage(_Strict):
    role: Literal["user", "assistant", "system"]  # Claude Code sends system turns too
    content: str | list[Block]


class Tool(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None  # absent or "custom": a client tool; else one of Anthropic's own


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Strict):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=0)
    # "omitted": thinking blocks come back with their text left out (Claude Code asks so)
    display: Literal["summarized", "omitted"] | None = None

    @property
    def omitted(self) -> bool:
        return self.display == "omitted"


class OutputFormat(_Strict):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    effort: str | None = None  # a hosted model's effort level; the local one has none
    format: OutputFormat | None = None


class CountTokensRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    # how the hosted service trims old thinking/tool results; corral trims by its own rule
    context_management: dict[str, Any] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None  # a hosted-service hint; one local tier


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None


class Message(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage


class TokenCount(BaseModel):
    input_tokens: int
