"""Tool calls parsed out of generated text: formats, lists, wrappers, and no false positives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.core.toolcalls import ParsedOutput, ToolCallFormat, ToolCallStream, parse_tool_calls

QWEN = ToolCallFormat("<tool_call>", "</tool_call>")
MISTRAL = ToolCallFormat("[TOOL_CALLS]")
BARE = ToolCallFormat()
NAMES = {"get_weather", "search"}


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    fmt: ToolCallFormat
    calls: list[tuple[str, dict[str, Any]]]
    content: str


CASES = [
    Case(
        "qwen one call",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        QWEN,
        [("get_weather", {"city": "Paris"})],
        "",
    ),
    Case(
        "qwen two tags, prose before",
        'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call>\n'
        '<tool_call>{"name": "search", "arguments": {"q": "B"}}</tool_call>',
        QWEN,
        [("get_weather", {"city": "A"}), ("search", {"q": "B"})],
        "Checking.",
    ),
    Case(
        "mistral list",
        '[TOOL_CALLS] [{"name": "search", "arguments": {"q": "x"}}, '
        '{"name": "get_weather", "arguments": {}}]',
        MISTRAL,
        [("search", {"q": "x"}), ("get_weather", {})],
        "",
    ),
    Case(
        "llama3 bare parameters",
        '{"name": "get_weather", "parameters": {"city": "Rome", "days": 2}}',
        BARE,
        [("get_weather", {"city": "Rome", "days": 2})],
        "",
    ),
    Case(
        "python tag",
        '<|python_tag|>{"name": "search", "parameters": {"q": "llamas"}}',
        BARE,
        [("search", {"q": "llamas"})],
        "",
    ),
    Case(
        "arguments as a JSON string",
        '{"name": "search", "arguments": "{\\"q\\": \\"s\\"}"}',
        BARE,
        [("search", {"q": "s"})],
        "",
    ),
    Case(
        "openai shape",
        '[{"type": "function", "function": {"name": "search", "arguments": {"q": 1}}}]',
        BARE,
        [("search", {"q": 1})],
        "",
    ),
    Case(
        "missing arguments are empty",
        '{"name": "search", "arguments": null}',
        BARE,
        [("search", {})],
        "",
    ),
    Case(
        "text after the calls stays content",
        '{"name": "search", "arguments": {}}\nDone.',
        BARE,
        [("search", {})],
        "Done.",
    ),
    # No false positives:
    Case("prose", "The weather in Paris is sunny.", BARE, [], "The weather in Paris is sunny."),
    Case(
        "json after prose",
        'Sure: {"name": "search", "arguments": {"q": "x"}}',
        BARE,
        [],
        'Sure: {"name": "search", "arguments": {"q": "x"}}',
    ),
    Case(
        "unknown tool",
        '{"name": "rm_rf", "arguments": {}}',
        BARE,
        [],
        '{"name": "rm_rf", "arguments": {}}',
    ),
    Case("json that is data", '{"name": "Bob", "age": 3}', BARE, [], '{"name": "Bob", "age": 3}'),
    Case(
        "broken json",
        '{"name": "search", "arguments": {',
        BARE,
        [],
        '{"name": "search", "arguments": {',
    ),
    Case(
        "arguments not an object",
        '{"name": "search", "arguments": [1, 2]}',
        BARE,
        [],
        '{"name": "search", "arguments": [1, 2]}',
    ),
    Case(
        "list with one non-call",
        '[{"name": "search", "arguments": {}}, {"foo": 1}]',
        BARE,
        [],
        '[{"name": "search", "arguments": {}}, {"foo": 1}]',
    ),
    Case(
        "tag without json",
        "I would use <tool_call> here.",
        QWEN,
        [],
        "I would use <tool_call> here.",
    ),
    Case(
        "tag format, bare json",
        '{"name": "search", "arguments": {}}',
        QWEN,
        [],
        '{"name": "search", "arguments": {}}',
    ),
    Case("empty", "", BARE, [], ""),
    Case("only whitespace", "  \n", BARE, [], "  \n"),
    Case("a list of numbers", "[1, 2, 3]", BARE, [], "[1, 2, 3]"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parse(case: Case) -> None:
    parsed = parse_tool_calls(case.text, case.fmt, NAMES)
    assert [(c.function.name, c.function.arguments) for c in parsed.tool_calls] == case.calls
    assert parsed.content == case.content
    for call in parsed.tool_calls:
        assert isinstance(call.function.arguments, dict)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_stream_gives_the_same_result_in_any_chunking(case: Case) -> None:
    for size in (1, 3, 1000):
        stream = ToolCallStream(case.fmt, NAMES)
        shown = "".join(
            stream.feed(case.text[i : i + size]) for i in range(0, len(case.text), size)
        )
        final = stream.finish()
        assert [(c.function.name, c.function.arguments) for c in final.tool_calls] == case.calls
        if case.calls:
            assert (shown + final.content).strip() == case.content
            assert "{" not in shown  # a call never leaks out as content
        else:
            assert shown + final.content == case.text


def test_stream_shows_prose_before_the_tag_at_once() -> None:
    stream = ToolCallStream(QWEN, NAMES)
    assert stream.feed("Let me") == "Let me"
    assert stream.feed(" check <tool") == " check "  # '<tool' might open a tag: held back
    assert stream.feed('_call>{"name": "search", ') == ""
    assert stream.feed('"arguments": {}}</tool_call>') == ""
    assert stream.finish() == ParsedOutput(
        "", parse_tool_calls('{"name": "search", "arguments": {}}').tool_calls
    )


def test_without_tool_names_an_arguments_member_is_required() -> None:
    assert (
        parse_tool_calls('{"name": "x", "arguments": {"a": 1}}').tool_calls[0].function.name == "x"
    )
    assert parse_tool_calls('{"name": "x"}').tool_calls == []


def test_format_for_template_fallbacks() -> None:
    assert ToolCallFormat.for_template(None) == BARE
    assert ToolCallFormat.for_template("{{ if .Nope }}") == BARE  # does not compile
    assert ToolCallFormat.for_template("{% if tools %}[TOOL_CALLS]{% endif %}") == MISTRAL


_PIECES = ['{"name": "search"', ', "arguments": {}}', "<tool_call>", "</tool_call>", "[", "]", ","]
_PIECES += ["[TOOL_CALLS]", "<|python_tag|>", " ", "\n", "prose", '"', "{", "}", '"x": 1']
_TEXT = st.one_of(st.text(), st.lists(st.sampled_from(_PIECES)).map("".join))


@settings(max_examples=300, deadline=None, database=None)
@given(_TEXT, st.sampled_from([QWEN, MISTRAL, BARE]))
def test_any_text_parses_and_streams_the_same(text: str, fmt: ToolCallFormat) -> None:
    parsed = parse_tool_calls(text, fmt, NAMES)
    if not parsed.tool_calls:
        assert parsed.content == text  # nothing taken from text that holds no call
    stream = ToolCallStream(fmt, NAMES)
    shown = "".join(stream.feed(text[i : i + 2]) for i in range(0, len(text), 2))
    final = stream.finish()
    assert final.tool_calls == parsed.tool_calls
    if not parsed.tool_calls:
        assert shown + final.content == text
