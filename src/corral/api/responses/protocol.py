"""Pydantic models of the Responses API request, as the ``openai`` SDK sends it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # unknown fields are kept so convert.py can refuse them by name instead of dropping them
    model_config = ConfigDict(extra="allow")


class ContentPart(_Model):
    type: Literal["input_text", "output_text", "input_image", "refusal"]
    text: str | None = None
    image_url: str | None = None
    refusal: str | None = None


class InputItem(_Model):
    """One ``input`` item: a message, a function call, or a function call's output."""

    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class FunctionTool(_Model):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(_Model):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextConfig(_Model):
    format: TextFormat | None = None


class Reasoning(_Model):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: str | None = None


class ResponseRequest(_Model):
    model: str
    input: str | list[InputItem] = ""
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    metadata: dict[str, str] | None = None
    store: bool = True
    previous_response_id: str | None = None
    stream: bool = False
    background: bool | None = None
    include: list[str] | None = None
    conversation: str | dict[str, Any] | None = None
