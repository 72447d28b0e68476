import pytest

from corral.api.openai.errors import InvalidParameter, UnsupportedParameter
from corral.api.responses.convert import chat_request
from corral.api.responses.protocol import InputItem, ResponseRequest


def _req(**kw: object) -> ResponseRequest:
    return ResponseRequest.model_validate({"model": "m", **kw})


def test_string_input_is_one_user_message_after_instructions() -> None:
    chat = chat_request(_req(input="hi", instructions="be brief", max_output_tokens=5))
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", "be brief"),
        ("user", "hi"),
    ]
    assert chat.options is not None and chat.options.num_predict == 5


def test_history_comes_before_new_input() -> None:
    history = [
        InputItem(role="user", content="my name is Ada"),
        InputItem(role="assistant", content=[{"type": "output_text", "text": "hello Ada"}]),  # type: ignore[list-item]
    ]
    chat = chat_request(_req(input="my name?"), history)
    assert [m.content for m in chat.messages] == ["my name is Ada", "hello Ada", "my name?"]


def test_function_call_round_trip_items() -> None:
    chat = chat_request(
        _req(
            input=[
                {"role": "developer", "content": "use tools"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "2"},
            ]
        )
    )
    assert chat.messages[0].role == "system"
    calls = chat.messages[1].tool_calls
    assert calls is not None and calls[0].function.arguments == {"x": 1}
    assert (chat.messages[2].role, chat.messages[2].content) == ("tool", "2")


def test_tools_format_and_reasoning() -> None:
    chat = chat_request(
        _req(
            input="x",
            tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            text={"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
            reasoning={"effort": "high"},
        )
    )
    assert chat.tools == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert chat.format == {"type": "object"}
    assert chat.think == "high"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"include": ["file_search_call.results"]}, "include"),
        ({"conversation": "conv_1"}, "conversation"),
    ],
)
def test_unsupported_fields_are_named(fields: dict[str, object], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as err:
        chat_request(_req(input="x", **fields))
    assert err.value.param == param


def test_bad_function_arguments_name_the_item() -> None:
    with pytest.raises(InvalidParameter) as err:
        chat_request(_req(input=[{"type": "function_call", "name": "f", "arguments": "{"}]))
    assert err.value.param == "input[0].arguments"
