"""``corral list`` / ``ps`` / ``show`` output, against a fake server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.cli._format import go_value, human_bytes, human_duration, human_number
from tests.cli.fakes import FakeServer

Corral = Callable[..., int]


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def tags() -> dict[str, Any]:
    """Built per test: the ages are relative to now, not to when the module was imported."""
    return {
        "models": [
            {
                "name": "smollm2:135m",
                "model": "smollm2:135m",
                "digest": "sha256:abcdef0123456789" + "0" * 48,
                "size": 98_900_000,
                "modified_at": ago(minutes=2, seconds=5),
            },
            {
                "name": "llama3.2:latest",
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "size": 2_019_393_189,
                "modified_at": ago(days=22),
            },
        ]
    }


def test_list_prints_an_ollama_style_table(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/api/tags", tags())

    assert corral("list") == 0

    assert capsys.readouterr().out == (
        "NAME               ID              SIZE      MODIFIED\n"
        "smollm2:135m       abcdef012345    98 MB     2 minutes ago\n"
        "llama3.2:latest    a80c4f17acd5    2.0 GB    3 weeks ago\n"
    )


def test_ls_alias_filters_by_prefix(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/api/tags", tags())

    assert corral("ls", "LLAMA") == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert [line.split()[0] for line in out[1:]] == ["llama3.2:latest"]


def test_list_with_no_models_prints_the_header(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/api/tags", {"models": []})
    assert corral("list") == 0
    assert capsys.readouterr().out == "NAME    ID    SIZE    MODIFIED\n"


def test_ps_shows_processor_and_until(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    models = [
        {
            "name": "smollm2:135m",
            "digest": "abcdef0123456789",
            "size": 250_000_000,
            "size_vram": 0,
            "expires_at": ahead(minutes=4, seconds=30),
        },
        {
            "name": "gemma3:270m",
            "digest": "0123456789abcdef",
            "size": 1_500_000_000,
            "size_vram": 750_000_000,
            "expires_at": None,
        },
    ]
    server.json("GET", "/api/ps", {"models": models})

    assert corral("ps") == 0

    assert capsys.readouterr().out == (
        "NAME            ID              SIZE      PROCESSOR          UNTIL\n"
        "smollm2:135m    abcdef012345    250 MB    100% CPU           4 minutes from now\n"
        "gemma3:270m     0123456789ab    1.5 GB    50%/50% CPU/GPU    Forever\n"
    )


SHOW = {
    "modelfile": "FROM /models/smollm2.gguf\n",
    "parameters": 'stop                           "<|im_end|>"\ntemperature                    0.2',
    "template": "{{ .Prompt }}",
    "system": "You are a helpful AI assistant named SmolLM.",
    "license": "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n",
    "details": {"family": "llama", "parameter_size": "", "quantization_level": "Q4_1"},
    "model_info": {
        "general.architecture": "llama",
        "general.parameter_count": 134515008,
        "llama.context_length": 8192,
        "llama.embedding_length": 576,
    },
    "capabilities": ["completion"],
}


def test_show_prints_model_capabilities_parameters_system_license(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/show", SHOW)

    assert corral("show", "smollm2:135m") == 0

    assert server.requests == [("POST", "/api/show", {"model": "smollm2:135m"})]
    assert capsys.readouterr().out == (
        "  Model\n"
        "    architecture        llama\n"
        "    parameters          134.52M\n"
        "    context length      8192\n"
        "    embedding length    576\n"
        "    quantization        Q4_1\n"
        "\n"
        "  Capabilities\n"
        "    completion\n"
        "\n"
        "  Parameters\n"
        '    stop           "<|im_end|>"\n'
        "    temperature    0.2\n"
        "\n"
        "  System\n"
        "    You are a helpful AI assistant named SmolLM.\n"
        "\n"
        "  License\n"
        "    Apache License\n"
        "    Version 2.0, January 2004\n"
        "    ...\n"
        "\n"
    )


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--modelfile", "FROM /models/smollm2.gguf\n"),
        ("--template", "{{ .Prompt }}\n"),
        ("--system", "You are a helpful AI assistant named SmolLM.\n"),
        ("--parameters", f"{SHOW['parameters']}\n"),
    ],
)
def test_show_flag_prints_the_raw_field(
    corral: Corral,
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    expected: str,
) -> None:
    server.json("POST", "/api/show", SHOW)
    assert corral("show", "smollm2:135m", flag) == 0
    assert capsys.readouterr().out == expected


def test_show_missing_field_and_unknown_model(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/show", {**SHOW, "license": ""})
    assert corral("show", "m", "--license") == 0
    assert capsys.readouterr().out == "No license was specified for this model.\n"

    server.json("POST", "/api/show", {"error": 'model "x" not found, try pulling it first'}, 404)
    assert corral("show", "x") == 1
    captured = capsys.readouterr()
    assert captured.err == 'Error: model "x" not found, try pulling it first\n'
    assert captured.out == ""


def test_show_flags_are_exclusive(corral: Corral, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        corral("show", "m", "--license", "--system")
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (1500, "1.5 KB"),
        (98_900_000, "98 MB"),
        (2_000_000_000, "2 GB"),
        (4_661_224_676, "4.7 GB"),
        (123_456_789_000, "123 GB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (61, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_human_number() -> None:
    assert [human_number(n) for n in (8_000_000_000, 7_615_616_512, 134_515_008, 999)] == [
        "8B",
        "7.6B",
        "134.52M",
        "999",
    ]


VERBOSE_SHOW = {
    "details": {"quantization_level": "Q8_0"},
    "model_info": {
        "general.architecture": "llama",
        "general.parameter_count": 134515008,
        "llama.context_length": 8192,
        "llama.embedding_length": 576,
        "llama.rope.freq_base": 100000.0,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.ggml.tokens": ["<s>", "</s>", "<unk>", "a"],
    },
    "projector_info": {
        "general.architecture": "clip",
        "general.parameter_count": 400_000_000,
        "clip.vision.embedding_length": 1024,
        "clip.vision.projection_dim": 768,
    },
    "tensors": [
        {"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]},
        {"name": "output_norm.weight", "type": "F32", "shape": [576]},
    ],
}


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_show_verbose_asks_for_and_prints_all_metadata(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    server.json("POST", "/api/show", VERBOSE_SHOW)

    assert corral("show", "smollm2:135m", flag) == 0

    assert server.requests == [("POST", "/api/show", {"model": "smollm2:135m", "verbose": True})]
    assert capsys.readouterr().out == (
        "  Model\n"
        "    architecture        llama\n"
        "    parameters          134.52M\n"
        "    context length      8192\n"
        "    embedding length    576\n"
        "    quantization        Q8_0\n"
        "\n"
        "  Projector\n"
        "    architecture        clip\n"
        "    parameters          400M\n"
        "    embedding length    1024\n"
        "    dimensions          768\n"
        "\n"
        "  Metadata\n"
        "    general.architecture            llama\n"
        "    general.parameter_count         1.34515008e+08\n"
        "    llama.context_length            8192\n"
        "    llama.embedding_length          576\n"
        "    llama.rope.freq_base            100000\n"
        "    tokenizer.ggml.add_bos_token    false\n"
        "    tokenizer.ggml.tokens           [<s> </s> ...+2 more]\n"
        "\n"
        "  Tensors\n"
        "    token_embd.weight     Q8_0    [576 49152]\n"
        "    output_norm.weight    F32     [576]\n"
        "\n"
    )


def test_show_flag_with_verbose_still_prints_the_field(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("POST", "/api/show", SHOW)
    assert corral("show", "m", "--template", "-v") == 0
    assert capsys.readouterr().out == "{{ .Prompt }}\n"


def test_ps_shows_the_context_column_when_the_server_reports_it(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model = {
        "name": "smollm2:135m",
        "digest": "abcdef0123456789",
        "size": 250_000_000,
        "size_vram": 250_000_000,
        "context_length": 4096,
        "expires_at": ago(seconds=1),
    }
    server.json("GET", "/api/ps", {"models": [model]})

    assert corral("ps") == 0

    assert capsys.readouterr().out == (
        "NAME            ID              SIZE      PROCESSOR    CONTEXT    UNTIL\n"
        "smollm2:135m    abcdef012345    250 MB    100% GPU     4096       Stopping...\n"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8192, "8192"),
        (8_030_261_248, "8.030261248e+09"),
        (1e6, "1e+06"),
        (999_999, "999999"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (True, "true"),
        ([1, "a", 0.5], "[1 a 0.5]"),
        (None, "<nil>"),
    ],
)
def test_go_value(value: object, text: str) -> None:
    assert go_value(value) == text
