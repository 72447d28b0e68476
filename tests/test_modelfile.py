"""The Modelfile parser and writer: Ollama's grammar, typed parameters, exact round trips."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import BadRequest, InvalidModelName, InvalidOption
from corral.modelfile import (
    PARAMETER_TYPES,
    FromSource,
    Modelfile,
    ModelfileError,
    coerce_parameters,
    format_value,
    parse_modelfile,
    parse_parameter,
    render_modelfile,
    resolve_from,
)
from corral.names import parse_name
from corral.types import Options

CHATML = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

FULL = f'''# A Modelfile with every instruction
from smollm2:135m
PARAMETER temperature 0.7
parameter num_ctx 4096
PARAMETER stop <|im_end|>
PARAMETER stop "User:"
PARAMETER use_mmap false
TEMPLATE """{CHATML}"""
SYSTEM You are a pirate.
ADAPTER ./lora.gguf
LICENSE """MIT License

Copyright"""
LICENSE Apache-2.0
MESSAGE user Hello there
MESSAGE assistant "  Ahoy!  "
'''


def test_every_instruction() -> None:
    mf = parse_modelfile(FULL)
    assert mf.from_ == ["smollm2:135m"]
    assert mf.parameters == {
        "temperature": 0.7,
        "num_ctx": 4096,
        "stop": ["<|im_end|>", "User:"],
        "use_mmap": False,
    }
    assert mf.template == CHATML
    assert mf.system == "You are a pirate."
    assert mf.adapters == ["./lora.gguf"]
    assert mf.licenses == ["MIT License\n\nCopyright", "Apache-2.0"]
    assert mf.messages == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "  Ahoy!  "},
    ]
    assert isinstance(mf.parameters["num_ctx"], int)
    assert isinstance(mf.parameters["temperature"], float)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ('FROM m\nSYSTEM """\nline one\nline two\n"""\n', "system", "\nline one\nline two\n"),
        ('FROM m\nSYSTEM "spans\ntwo lines"\n', "system", "spans\ntwo lines"),
        ("FROM m\nSYSTEM    padded value   \n", "system", "padded value"),
        ('FROM m\nSYSTEM """has """ inside"""\n', "system", 'has """ inside'),
        ('FROM m\nSYSTEM """ends with a quote""""\n', "system", 'ends with a quote"'),
        ('FROM m\nSYSTEM ""\n', "system", ""),
        ("FROM m\nSYSTEM x # not a comment\n", "system", "x # not a comment"),
        ("FROM m\r\nSYSTEM windows\r\n", "system", "windows"),
        ("\ufeffFROM m\nSYSTEM bom\n", "system", "bom"),
        ("FROM m\nTEMPLATE {{ .Prompt }}\nTEMPLATE last wins\n", "template", "last wins"),
        ("  # indented comment\nFROM ./model.gguf\n", "from_", ["./model.gguf"]),
        ("FROM a\nFROM /b/projector.gguf\n", "from_", ["a", "/b/projector.gguf"]),
    ],
)
def test_values_and_quoting(text: str, field: str, expected: Any) -> None:
    assert getattr(parse_modelfile(text), field) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM m\n\n  FORM x\n", "line 3: unknown instruction 'FORM'"),
        ("FROM m\nPARAMETER foo 1\n", "line 2: unknown parameter 'foo'"),
        ("FROM m\nPARAMETER num_ctx 4k\n", "line 2: invalid int value for parameter 'num_ctx'"),
        ("FROM m\nPARAMETER temperature hot\n", "invalid float value for parameter 'temperature'"),
        ("FROM m\nPARAMETER use_mmap maybe\n", "invalid bool value for parameter 'use_mmap'"),
        ("FROM m\nPARAMETER temperature\n", "line 2: PARAMETER needs a parameter name and a value"),
        ("FROM m\nMESSAGE tool hi\n", "line 2: MESSAGE role 'tool' must be one of"),
        ("FROM m\nMESSAGE user\n", "line 2: MESSAGE needs a role and a value"),
        ('FROM m\n\nSYSTEM """never closed\n\n', "line 3: SYSTEM has an unterminated quoted value"),
        ('FROM m\nSYSTEM "open\n', "line 2: SYSTEM has an unterminated"),
        ("SYSTEM hi\n", "no FROM line"),
        ("", "no FROM line"),
        ("FROM\n", "line 1: FROM needs a value"),
        ("FROM m\nRENDERER qwen3\n", "line 2: instruction 'RENDERER' is not supported"),
        ("FROM m\n123 x\n", "line 2: unknown instruction '123'"),
        ("FROM m\nPARAMETER speculative fast\n", "line 2: invalid value for parameter 'spec"),
        ("FROM m\nPARAMETER draft_max lots\n", "invalid int value for parameter 'draft_max'"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text)
    assert message in info.value.message
    assert isinstance(info.value, BadRequest) and info.value.status_code == 400


def test_draft_instruction_is_the_draft_parameter() -> None:
    text = "FROM qwen2.5:7b\nDRAFT qwen2.5:0.5b\nPARAMETER draft_max 8\n"
    mf = parse_modelfile(text)
    assert mf.parameters == {"draft": "qwen2.5:0.5b", "draft_max": 8}
    assert parse_modelfile(render_modelfile(mf)) == mf  # written back as PARAMETER draft
    assert coerce_parameters({"speculative": "ngram-simple", "draft_min": 2.0}) == {
        "speculative": "ngram-simple",
        "draft_min": 2,
    }


def test_error_line_counts_multiline_values() -> None:
    text = 'FROM m\nTEMPLATE """a\nb\nc"""\nPARAMETER nope 1\n'
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text)
    assert info.value.line == 5


def test_deprecated_parameters_are_dropped_with_a_warning() -> None:
    mf = parse_modelfile("FROM m\nPARAMETER penalize_newline true\nPARAMETER seed 3\n")
    assert mf.parameters == {"seed": 3}
    assert mf.warnings == ["line 2: parameter penalize_newline is deprecated and was ignored"]


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("num_ctx", "2048", 2048),
        ("seed", "-1", -1),
        ("temperature", "1e-3", 0.001),
        ("top_p", ".9", 0.9),
        ("use_mmap", "T", True),
        ("use_mmap", "0", False),
        ("stop", "###", ["###"]),
        ("mirostat_eta", "0.1", 0.1),
        ("draft", "qwen2.5:0.5b", "qwen2.5:0.5b"),
        ("speculative", "ngram", "ngram"),
        ("draft_p_min", "0.75", 0.75),
    ],
)
def test_parameter_types(name: str, text: str, value: Any) -> None:
    assert parse_parameter(name, text) == value
    assert type(parse_parameter(name, text)) is type(value)


def test_parameter_table_covers_corrals_options() -> None:
    assert set(Options.model_fields) <= set(PARAMETER_TYPES)


def test_api_parameters_are_typed_like_modelfile_ones() -> None:
    coerced = coerce_parameters(
        {"num_ctx": 4096.0, "temperature": 1, "stop": "x", "use_mmap": "false", "low_vram": True}
    )
    assert coerced == {"num_ctx": 4096, "temperature": 1.0, "stop": ["x"], "use_mmap": False}
    with pytest.raises(InvalidOption, match="unknown parameter 'gpu_layers'"):
        coerce_parameters({"gpu_layers": 3})
    with pytest.raises(InvalidOption, match="invalid int value for parameter 'num_ctx'"):
        coerce_parameters({"num_ctx": 1.5})
    with pytest.raises(InvalidOption, match="invalid list value for parameter 'stop'"):
        coerce_parameters({"stop": [1, 2]})


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        " leading",
        "trailing ",
        '"quoted"',
        '"',
        '"""',
        "multi\nline",
        'a\n"b"\nc',
        "\n",
        "#x",
    ],
)
def test_format_value_reads_back(value: str) -> None:
    written = format_value(value)
    assert parse_modelfile(f"FROM m\nSYSTEM {written}\n").system == value


def test_unwritable_value_is_refused_or_best_effort() -> None:
    value = 'ends a line with both quotes: "\n"""\nmore'
    with pytest.raises(ModelfileError, match="cannot be written"):
        format_value(value)
    assert format_value(value, strict=False) == f'"""{value}"""'


def test_render_then_parse_is_identity() -> None:
    mf = parse_modelfile(FULL)
    text = render_modelfile(mf, ["generated"])
    assert text.startswith("# generated\n\nFROM smollm2:135m\n")
    assert parse_modelfile(text) == mf


def test_create_fields() -> None:
    mf = parse_modelfile(FULL)
    fields = mf.create_fields()
    assert fields["license"] == ["MIT License\n\nCopyright", "Apache-2.0"]
    assert fields["parameters"]["stop"] == ["<|im_end|>", "User:"]
    assert "from" not in fields and "adapters" not in fields
    assert Modelfile(from_=["m"]).create_fields() == {}


def test_resolve_from(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_from("model.gguf", tmp_path) == FromSource("file", path=gguf)
    assert resolve_from(str(gguf), Path("/elsewhere")) == FromSource("file", path=gguf)
    assert resolve_from(".", tmp_path) == FromSource("file", path=gguf)  # a dir with one GGUF
    assert resolve_from("llama3.2", tmp_path) == FromSource("model", name="llama3.2:latest")
    (tmp_path / "second.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelfileError, match="holds 2 GGUF files"):
        resolve_from(".", tmp_path)
    with pytest.raises(ModelfileError, match="no such file"):
        resolve_from("./missing.gguf", tmp_path)
    with pytest.raises(ModelfileError, match="invalid model name"):
        resolve_from("bad name!", tmp_path)


@settings(max_examples=400, deadline=None, database=None)
@given(st.text())
def test_parser_raises_only_typed_errors(text: str) -> None:
    with contextlib.suppress(ModelfileError):
        parse_modelfile(text)


_PIECES = ["FROM ", "PARAMETER ", "TEMPLATE ", "MESSAGE ", "SYSTEM ", '"""', '"', "\n", " "]
_PIECES += ["#", "stop ", "num_ctx ", "user ", "x", "1", "\r\n", "\t"]
_INSTRUCTION_SOUP = st.lists(st.sampled_from(_PIECES)).map("".join)


@settings(max_examples=400, deadline=None, database=None)
@given(_INSTRUCTION_SOUP)
def test_parser_raises_only_typed_errors_on_modelfile_like_text(text: str) -> None:
    try:
        mf = parse_modelfile(text)
    except ModelfileError:
        return
    assert mf.from_  # a parsed Modelfile always has a FROM
    try:
        rendered = render_modelfile(mf)
    except ModelfileError:
        return  # a value no quoting can carry (a line ending in both closing quotes)
    assert parse_modelfile(rendered) == mf  # whatever renders reads back exactly


@settings(max_examples=400, deadline=None, database=None)
@given(st.text())
def test_parse_name_raises_only_typed_errors(text: str) -> None:
    try:
        name = parse_name(text)
    except InvalidModelName:
        return
    assert parse_name(name.full) == name
