"""Jinja (Hugging Face style) templates and the limits every template renders under."""

from __future__ import annotations

import time

import pytest

from corral.templates import TemplateError, TemplateLimitError, compile_template, validate_template
from corral.templates.sandbox import MAX_STEPS

HI = [{"role": "user", "content": "Hi"}]


def test_hf_context() -> None:
    template = compile_template(
        "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}"
        "{% if tools is not none %}{{ tools | length }} tools{% endif %}"
        "{% if enable_thinking is defined %} think={{ enable_thinking }}{% endif %}"
    )
    assert template.render(HI, bos_token="<s>", eos_token="</s>") == "<s><user>Hi<assistant></s>"
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert template.render(HI, tools, think=True).endswith("1 tools think=True")


def test_hf_tool_messages() -> None:
    template = compile_template(
        "{% for m in messages %}{% for c in m.tool_calls or [] %}{{ c.function.name }}"
        "{{ c.function.arguments | tojson }}{% endfor %}{% if m.role == 'tool' %}[{{ m.name }}:"
        "{{ m.content }}]{% endif %}{% endfor %}"
    )
    chat = [
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": '{"é": "<b>"}'}}],
        },
        {"role": "tool", "tool_name": "f", "content": "ok"},
    ]
    assert template.render(chat) == 'f{"é": "<b>"}[f:ok]'


def test_generation_tag_renders_its_body() -> None:
    source = (
        "{% for m in messages %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endfor %}"
    )
    assert compile_template(source).render(HI) == "[Hi]"


def test_trim_blocks_like_transformers() -> None:
    template = compile_template(
        "{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}"
    )
    assert template.render(HI) == "Hi\n"


def test_raise_exception_is_a_400_at_render_time() -> None:
    template = compile_template(
        "{% if messages[0].role != 'system' %}"
        "{{ raise_exception('need a system message') }}{% endif %}"
    )
    with pytest.raises(TemplateError, match="template error: need a system message") as info:
        template.render(HI)
    assert info.value.status_code == 400
    with pytest.raises(TemplateError, match="need a system message"):
        validate_template(template.text)  # the trial render at create time catches it too


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        validate_template("{% for m in messages %}\n{{ m.content }}\n{% if %}\n{% endfor %}")
    assert info.value.line == 3
    assert info.value.message.startswith("template error: line 3:")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.append(1) }}",
        "{{ cycler }}{{ lipsum(1000) }}",
    ],
)
def test_sandbox_blocks_python_internals(source: str) -> None:
    try:
        out = compile_template(source).render(HI)
    except TemplateError:
        return
    assert "class" not in out and "Lorem" not in out.title()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            f"more than {MAX_STEPS} steps",
        ),
        ("{{ 'x' * 10**9 }}", "'*' would build 1000000000 items"),
        ("{{ 2 ** 100000 }}", "exponent larger than 1000"),
        ("{{ '%099999999d' % 1 }}", "a format would build"),
        ("{{ 'a' | center(999999999) }}", "|center would build"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
    ],
)
def test_limits(source: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match=message):
        compile_template(source).render(HI)
    assert time.monotonic() - started < 5


def test_deadline_stops_exponential_recursion() -> None:
    source = (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}"
    )
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="took too long"):
        compile_template(source).render(HI, timeout=0.2)
    assert time.monotonic() - started < 2


def test_output_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.templates import sandbox

    monkeypatch.setattr(sandbox, "MAX_OUTPUT", 1000)
    with pytest.raises(TemplateLimitError, match="prompt longer than 1000 characters"):
        compile_template("{% for i in range(200) %}0123456789{% endfor %}").render(HI)


def test_loop_guard_cannot_be_shadowed() -> None:
    source = "{% set loop_guard = none %}{% for i in range(3) %}{{ i }}{% endfor %}"
    assert compile_template(source).render(HI) == "012"


def test_ordinary_templates_are_far_below_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """One step per message: a 2,000-message chat fits a budget of 2,100 steps."""
    from corral.templates import sandbox

    template = compile_template(
        "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}{% endfor %}"
    )
    chat = [
        {"role": "user" if i % 2 else "assistant", "content": f"message {i}"} for i in range(2000)
    ]
    monkeypatch.setattr(sandbox.Budget, "__init__", _small_budget)
    assert template.render(chat).count("<user>") == 1000
    with pytest.raises(TemplateLimitError):
        template.render(chat + chat)


def _small_budget(self: object, deadline: float, steps: int = 2100) -> None:
    self.deadline, self.steps = deadline, steps  # type: ignore[attr-defined]
