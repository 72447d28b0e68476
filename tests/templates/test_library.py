"""Real library templates rendered to the exact prompt Ollama's Go code gives for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.core.toolcalls import ToolCallFormat, parse_tool_calls
from corral.gguf import read_gguf
from corral.templates import compile_template, render_prompt, validate_template
from tests.templates.library import (
    CHATML,
    CHATML_LEGACY,
    LLAMA2_LEGACY,
    LLAMA31,
    MISTRAL,
    QWEN25,
    QWEN25_HF,
    TOOL_CHAT,
    WEATHER_TOOL,
)

CHAT = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
]
TOOLS_JSON = (
    '{"type":"function","function":{"name":"get_weather","description":"Weather \\u003cnow\\u003e'
    ' \\u0026 later","parameters":{"type":"object","required":["city"],"properties":{"city":'
    '{"type":"string","description":"City name"},"unit":{"type":"string","enum":["c","f"]}}}}}'
)
FUNCTION_JSON = TOOLS_JSON.removeprefix('{"type":"function","function":').removesuffix("}")


def test_chatml() -> None:
    assert render_prompt(CHATML, CHAT, system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_legacy_template_renders_turn_by_turn_and_stops_at_response() -> None:
    template = compile_template(CHATML_LEGACY)
    assert not template.uses_messages
    assert template.render(CHAT, system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_legacy_template_without_response() -> None:
    # Ollama appends {{ .Response }} to a template that mentions neither it nor .Messages.
    assert render_prompt(LLAMA2_LEGACY, CHAT, system="S") == (
        "[INST] <<SYS>>S<</SYS>>\n\nHi [/INST]Hello![INST] <<SYS>><</SYS>>\n\nBye [/INST]"
    )


def test_llama31_with_tools() -> None:
    prompt = render_prompt(
        LLAMA31, [*TOOL_CHAT, {"role": "user", "content": "And Rome?"}], [WEATHER_TOOL]
    )
    assert prompt == (
        "<|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\n\n"
        "When you receive a tool call response, use the output to format an answer to the "
        "orginal user question.\n\n"
        "You are a helpful assistant with tool calling capabilities.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n\n"
        '{"name": "get_weather", "parameters": {"city":"Paris","unit":"c"}}<|eot_id|>'
        "<|start_header_id|>ipython<|end_header_id|>\n\n22<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "Given the following functions, please respond with a JSON for a function call with "
        "its proper arguments that best answers the given prompt.\n\n"
        'Respond in the format {"name": function name, "parameters": dictionary of argument '
        "name and its value}. Do not use variables.\n\n"
        f"{TOOLS_JSON}\n\n"
        "Question: And Rome?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama31_without_tools_has_no_system_block() -> None:
    assert render_prompt(LLAMA31, [{"role": "user", "content": "Hi"}]) == (
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_qwen25_messages_branch_with_tools() -> None:
    prompt = render_prompt(QWEN25, TOOL_CHAT, [WEATHER_TOOL], system="Sys")
    assert prompt.startswith("<|im_start|>system\nSys\n\n# Tools\n\n")
    assert f'<tools>\n{{"type": "function", "function": {FUNCTION_JSON}}}\n</tools>' in prompt
    assert prompt.endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city":"Paris","unit":"c"}}\n'
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n22\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_mistral_tools_and_tag() -> None:
    chat = [*TOOL_CHAT, {"role": "user", "content": "ok"}]
    assert render_prompt(MISTRAL, chat, [WEATHER_TOOL]) == (
        "[INST]Weather in Paris?[/INST]"
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city":"Paris","unit":"c"}}]</s>'
        '[TOOL_RESULTS]{"content": 22}[/TOOL_RESULTS]'
        f"[AVAILABLE_TOOLS][{TOOLS_JSON}][/AVAILABLE_TOOLS][INST]ok[/INST]"
    )


@pytest.mark.parametrize(
    ("template", "tag", "end_tag", "tools"),
    [
        (QWEN25, "<tool_call>", "</tool_call>", True),
        (MISTRAL, "[TOOL_CALLS]", None, True),
        (LLAMA31, "{", None, True),
        (CHATML, "{", None, False),
        (QWEN25_HF, "<tool_call>", "</tool_call>", True),
    ],
)
def test_tool_call_format_from_template(
    template: str, tag: str, end_tag: str | None, tools: bool
) -> None:
    assert ToolCallFormat.for_template(template) == ToolCallFormat(tag, end_tag)
    assert compile_template(template).supports_tools is tools


def test_rendered_tool_calls_parse_back() -> None:
    """What a template writes for a call is what the parser reads for that model."""
    for template in (QWEN25, MISTRAL, LLAMA31):
        prompt = render_prompt(template, TOOL_CHAT[:2], [WEATHER_TOOL])
        tail = prompt.split("Weather in Paris?", 1)[1]
        tail = tail.split("<|end_header_id|>", 1)[-1].removeprefix("[/INST]")
        tail = tail.removeprefix("<|im_end|>\n<|im_start|>assistant\n")
        parsed = parse_tool_calls(tail, ToolCallFormat.for_template(template), {"get_weather"})
        assert [c.function.arguments for c in parsed.tool_calls] == [{"city": "Paris", "unit": "c"}]


def test_hf_qwen25_jinja_template() -> None:
    prompt = validate_template(QWEN25_HF).render(TOOL_CHAT, [WEATHER_TOOL])
    assert '"description": "Weather <now> & later"' in prompt  # HF's tojson: no HTML escaping
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"unit": "c", "city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n22\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    ) in prompt


def test_smollm2_gguf_template(smollm2_path: Path) -> None:
    text = read_gguf(smollm2_path).chat_template
    assert text is not None
    template = validate_template(text)
    assert template.syntax == "jinja" and not template.supports_tools
    assert template.render([{"role": "user", "content": "Hi"}], system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert template.render([{"role": "user", "content": "Hi"}]).startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM"
    )
