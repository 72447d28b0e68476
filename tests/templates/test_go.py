"""Go-template semantics through the translator, one construct at a time, and the errors."""

from __future__ import annotations

from typing import Any

import pytest

from corral.templates import (
    TemplateError,
    UnsupportedTemplate,
    compile_template,
    detect_syntax,
    render_prompt,
    validate_template,
)

MSGS = [
    {"role": "system", "content": "S1"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "u2"},
]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
        "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}}}  # fmt: skip
CALL = {
    "role": "assistant",
    "tool_calls": [{"function": {"name": "f", "arguments": {"z": "<x>", "a": 1}}}],
}


def render(template: str, messages: list[dict[str, Any]] = MSGS, **kwargs: Any) -> str:
    # Every case mentions .Messages so it renders in Ollama's messages mode.
    return render_prompt("{{- if .Messages }}{{ end }}" + template, messages, **kwargs)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a  {{- ` b ` -}}  c", "a b c"),
        ("a\n\n{{- /* dropped */ -}}\n\nb{{/* also */}}", "ab"),
        ("{{ .System }}", "S1"),
        (
            "{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}",
            "system:S1;user:u1;assistant:a1;user:u2;",
        ),
        (
            "{{ range $i, $m := .Messages }}{{ $i }}{{ $m.Role }} {{ end }}",
            "0system 1user 2assistant 3user ",
        ),
        ("{{ range $m := .Messages }}{{ $m.Content }}{{ end }}", "S1u1a1u2"),
        ("{{ range $_, $__ := .Messages }}{{ $__.Role | len }}{{ end }}", "6494"),
        ("{{ range .Tools }}x{{ else }}no tools{{ end }}", "no tools"),
        ("{{ with .System }}[{{ . }}]{{ else }}none{{ end }}", "[S1]"),
        ("{{ with .Prompt }}[{{ . }}]{{ else with .System }}<{{ . }}>{{ end }}", "<S1>"),
        ("{{ $x := 1 }}{{ range .Messages }}{{ $x = .Content }}{{ end }}{{ $x }}", "u2"),
        ('{{ $x := "out" }}{{ range .Messages }}{{ $x := "in" }}{{ end }}{{ $x }}', "out"),
        (
            "{{ range $i, $_ := .Messages }}{{ if eq $i 2 }}{{ break }}{{ end }}"
            "{{ .Content }}{{ end }}",
            "S1u1",
        ),
        (
            '{{ range .Messages }}{{ if eq .Role "user" }}{{ continue }}{{ end }}'
            "{{ .Content }}{{ end }}",
            "S1a1",
        ),
        (
            '{{ range .Messages }}{{ if eq .Role "system" "assistant" }}{{ .Content }}'
            "{{ end }}{{ end }}",
            "S1a1",
        ),
        (
            '{{ if ne .System "x" }}ne{{ end }}{{ if lt 1 2 }}lt{{ end }}'
            "{{ if ge 2 2 }}ge{{ end }}",
            "neltge",
        ),
        (
            "{{ len .Messages }} {{ len (slice .Messages 1) }} {{ len (slice .Messages 1 2) }}",
            "4 3 1",
        ),
        ("{{ range slice (slice .Messages 1) 1 3 }}{{ .Content }}{{ end }}", "a1u2"),
        (
            "{{ (index .Messages 1).Content }} {{ index .Messages 3 | print }}",
            'u1 {"role":"user","content":"u2"}',
        ),
        ('{{ or .Prompt "default" }} {{ and .System .Prompt }}|{{ not .Tools }}', "default |true"),
        (
            "{{ .IsThinkSet }} {{ .Think }} {{ 3 }} {{ 1.5 }} {{ 'a' }} {{ true }}",
            "false false 3 1.5 97 true",
        ),
        ('{{ "tab\\there" }}{{ `raw\\n` }}', "tab\there" + "raw\\n"),
        ('{{ print "a" 1 2 "b" }} {{ "x" | print "y" }}', "a1 2b yx"),
        (
            '{"role": "{{ (index .Messages 0).Role }}"} {% raw %} {#',
            '{"role": "system"} {% raw %} {#',
        ),
        ("{{ if .Messages }}{{ else if .System }}no{{ else }}no{{ end }}yes", "yes"),
        ("{{ $l := len .Messages }}{{ if gt $l 3 }}long{{ end }}", "long"),
        ("{{- range .Messages }}\n  {{- .Content -}}\n{{ end }}", "S1u1a1u2"),
    ],
)
def test_constructs(template: str, expected: str) -> None:
    assert render(template) == expected


def test_tool_values_print_as_go_json() -> None:
    chat = [{"role": "user", "content": "q"}, CALL]
    out = render(
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}"
        "{{ json .Function.Arguments }}{{ end }}{{ end }}",
        chat,
    )
    assert out == 'f{"a":1,"z":"\\u003cx\\u003e"}{"a":1,"z":"\\u003cx\\u003e"}'
    props = render(
        "{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}"
        "{{ $k }}={{ $v.type }};"
        "{{ end }}{{ end }}",
        tools=[TOOL],
    )
    assert props == "a=integer;b=string;"  # Go ranges over map keys in sorted order


def test_openai_style_string_arguments_become_a_map() -> None:
    call = {
        "role": "assistant",
        "tool_calls": [{"function": {"name": "f", "arguments": '{"q": 1}'}}],
    }
    out = render(
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}",
        [call],
    )
    assert out == '{"q":1}'


def test_messages_are_collated_like_ollama() -> None:
    chat = [
        {"role": "system", "content": "A"},
        {"role": "system", "content": "B"},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "tool", "content": "t1"},
        {"role": "tool", "content": "t2"},
    ]
    out = render("{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}", chat)
    assert out == "A\n\nB|system=A\n\nB;user=one\n\ntwo;tool=t1;tool=t2;"


def test_system_argument_goes_first_unless_messages_have_one() -> None:
    template = "{{ range .Messages }}{{ .Role }}:{{ .Content }} {{ end }}"
    assert render(template, [{"role": "user", "content": "q"}], system="S") == "system:S user:q "
    assert render(template, MSGS[:2], system="other") == "system:S1 user:u1 "


def test_generated_jinja_escapes_nothing_by_accident() -> None:
    # Message text is data, never template code, in either syntax.
    chat = [{"role": "user", "content": "{{ 7*7 }} {% if x %}"}]
    assert render("{{ range .Messages }}{{ .Content }}{{ end }}", chat) == "{{ 7*7 }} {% if x %}"


@pytest.mark.parametrize(
    ("template", "construct", "line"),
    [
        ('\n\n{{ printf "%s" .System }}', "printf", 3),
        ('{{ define "x" }}y{{ end }}', "define", 1),
        ('{{ template "x" . }}', "template", 1),
        ('{{ block "x" . }}y{{ end }}', "block", 1),
        ("{{ html .System }}", "html", 1),
        ("{{ js .System }}", "js", 1),
        ("{{ urlquery .System }}", "urlquery", 1),
        ("{{ call .System }}", "call", 1),
        (
            "{{ range .Tools }}{{ toTypeScriptType .Function.Parameters }}{{ end }}",
            "toTypeScriptType",
            1,
        ),
        ("{{ .System.Method 1 }}", "method call", 1),
        ("{{ 2i }}", "complex number", 1),
    ],
)
def test_unsupported_constructs_are_named_at_validation(
    template: str, construct: str, line: int
) -> None:
    with pytest.raises(UnsupportedTemplate) as info:
        validate_template(template)
    assert info.value.construct == construct
    assert info.value.line == line
    assert f"unsupported template construct '{construct}'" in info.value.message
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ .Nope }}", "line 1: can't evaluate field Nope in type Values"),
        (
            "x\n{{ range .Messages }}\n{{ .Contents }}{{ end }}",
            "line 3: can't evaluate field Contents in type Message",
        ),
        (
            "{{ range .Messages }}{{ .Role.Name }}{{ end }}",
            "can't evaluate field Name in type string",
        ),
        (
            "{{ range .Tools }}{{ .Function.Nme }}{{ end }}",
            "can't evaluate field Nme in type ToolFunction",
        ),
        ("{{ $x }}", 'undefined variable "$x"'),
        ("{{ range .Messages }}{{ $m := 1 }}{{ end }}{{ $m }}", 'undefined variable "$m"'),
        ("{{ nosuch .System }}", 'function "nosuch" not defined'),
        ("{{ eq .System }}", "wrong number of args for eq: got 1"),
        ("{{ if .System }}open", "{{if}} has no matching {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ break }}", "{{break}} outside {{range}}"),
        ("{{ range .Messages }}{{ else if .System }}{{ end }}", "{{else if}} inside range"),
        ("{{ .System ", "unclosed action"),
        ("{{/* never closed }}", "unclosed comment"),
        ("{{ .System | .Prompt }}", "unsupported template construct 'method call'"),
        ('{{ .System }}{{ "\\q" }}', "unknown escape sequence"),
        ("{{ range .System }}{{ end }}", "range can't iterate over string"),
    ],
)
def test_errors_at_validation(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        validate_template(template)
    assert message in info.value.message
    assert info.value.message.startswith("template error: ")


def test_runtime_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError, match="index out of range: 9"):
        render("{{ index .Messages 9 }}")
    with pytest.raises(TemplateError, match="slice index out of range"):
        render("{{ slice .Messages 3 1 }}")


@pytest.mark.parametrize(
    ("text", "syntax"),
    [
        ("{{ .System }}", "go"),
        ("{{- range $i, $m := .Messages }}{{ end }}", "go"),
        ("{{ json .Tools }}", "go"),
        ("{{ if eq 1 1 }}x{{ end }}", "go"),
        ("plain text, no actions", "go"),
        ("{% for m in messages %}{{ m.content }}{% endfor %}", "jinja"),
        ("{{ bos_token }}{{ messages[0]['content'] }}", "jinja"),
        ("{{ x.y }}", "jinja"),
        ("{# comment #}{{ messages }}", "jinja"),
        ("{{ .System }} {% raw %} {# text, not Jinja #}", "go"),  # Jinja cannot parse it
    ],
)
def test_detect_syntax(text: str, syntax: str) -> None:
    assert detect_syntax(text) == syntax


def test_compiled_templates_are_cached() -> None:
    assert compile_template("{{ .Prompt }}") is compile_template("{{ .Prompt }}")
