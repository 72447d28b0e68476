"""``corral create``: Modelfile to /api/create, blob uploads, status lines, errors.

The Modelfile itself is parsed by the real :mod:`corral.modelfile`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from corral.cli.create import Progress, translate
from corral.cli.main import CommandError
from corral.modelfile import parse_modelfile, resolve_from
from tests.cli.fakes import TTY, FakeServer, ndjson

Corral = Callable[..., int]

STATUSES = (
    {"status": "parsing GGUF"},
    {"status": "using existing layer sha256:" + "a" * 64},
    {"status": "writing manifest"},
    {"status": "success"},
)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


MODELFILE = '''# a comment
FROM llama3.2
PARAMETER temperature 0.2
PARAMETER num_ctx 4096
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|eot|>"
TEMPLATE """{{ .System }}
{{ .Prompt }}"""
SYSTEM You are terse.
LICENSE MIT
MESSAGE user Hi
MESSAGE assistant Hello!
'''


def test_from_a_model_name_sends_every_field(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(tmp_path / "Modelfile", MODELFILE)
    server.on("POST", "/api/create", lambda body: ndjson(*STATUSES))

    assert corral("create", "terse", "-f", str(tmp_path / "Modelfile"), "-q", "q4_K_M") == 0

    assert server.requests == [
        (
            "POST",
            "/api/create",
            {
                "model": "terse",
                "from": "llama3.2:latest",
                "parameters": {
                    "temperature": 0.2,
                    "num_ctx": 4096,
                    "stop": ["<|im_end|>", "<|eot|>"],
                },
                "template": "{{ .System }}\n{{ .Prompt }}",
                "system": "You are terse.",
                "license": ["MIT"],
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                ],
                "quantize": "q4_K_M",
            },
        )
    ]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "gathering model components\n"
        "parsing GGUF\n"
        f"using existing layer sha256:{'a' * 64}\n"
        "writing manifest\n"
        "success\n"
    )


def test_local_gguf_is_uploaded_relative_to_the_modelfile(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = b"GGUF" + bytes(range(256)) * 10_000  # 2.5 MB: streamed in 1 MiB pieces
    write(tmp_path / "models" / "tiny.gguf", weights)
    write(tmp_path / "models" / "Modelfile", "FROM ./tiny.gguf\nSYSTEM hi\n")
    monkeypatch.chdir(tmp_path)  # a relative -f; FROM is relative to the Modelfile
    blob = f"/api/blobs/{digest(weights)}"
    server.on("HEAD", blob, lambda body: httpx.Response(404))
    server.on("POST", blob, lambda body: httpx.Response(201))
    server.on("POST", "/api/create", lambda body: ndjson({"status": "success"}))

    assert corral("create", "tiny", "-f", "models/Modelfile") == 0

    assert server.paths() == [("HEAD", blob), ("POST", blob), ("POST", "/api/create")]
    assert server.requests[1][2] == weights
    assert server.headers[1]["content-length"] == str(len(weights))
    assert server.requests[2][2] == {
        "model": "tiny",
        "files": {"tiny.gguf": digest(weights)},
        "system": "hi",
    }
    assert capsys.readouterr().err == (
        f"gathering model components\ncopying file {digest(weights)} 100%\nsuccess\n"
    )


def test_blob_the_server_has_is_not_sent_and_adapters_expand_home(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "home" / "lora.gguf", b"GGUF lora")
    write(tmp_path / "base.gguf", b"GGUF base")
    write(tmp_path / "Modelfile", f"FROM {tmp_path / 'base.gguf'}\nADAPTER ~/lora.gguf\n")
    for data, status in ((b"GGUF base", 200), (b"GGUF lora", 404)):
        server.on("HEAD", f"/api/blobs/{digest(data)}", lambda body, s=status: httpx.Response(s))
    server.on("POST", f"/api/blobs/{digest(b'GGUF lora')}", lambda body: httpx.Response(201))
    server.on("POST", "/api/create", lambda body: ndjson({"status": "success"}))

    assert corral("create", "m", "-f", str(tmp_path / "Modelfile")) == 0

    assert [p for _, p in server.paths()] == [
        f"/api/blobs/{digest(b'GGUF base')}",
        f"/api/blobs/{digest(b'GGUF lora')}",
        f"/api/blobs/{digest(b'GGUF lora')}",
        "/api/create",
    ]
    assert server.requests[-1][2] == {
        "model": "m",
        "files": {"base.gguf": digest(b"GGUF base")},
        "adapters": {"lora.gguf": digest(b"GGUF lora")},
    }


def exists(server: FakeServer, *blobs: bytes) -> None:
    for data in blobs:
        server.on("HEAD", f"/api/blobs/{digest(data)}", lambda body: httpx.Response(200))
    server.on("POST", "/api/create", lambda body: ndjson({"status": "success"}))


@pytest.mark.parametrize(
    ("modelfile", "fields"),
    [
        ("FROM ./weights\nFROM ./mmproj.gguf\n", {}),  # a directory holding one GGUF
        ("FROM llama3.2\nFROM ./mmproj.gguf\n", {"from": "llama3.2:latest"}),
    ],
)
def test_several_froms_and_a_gguf_directory(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    modelfile: str,
    fields: dict[str, str],
) -> None:
    write(tmp_path / "weights" / "model.gguf", b"GGUF model")
    write(tmp_path / "weights" / "README.md", "about")
    write(tmp_path / "mmproj.gguf", b"GGUF projector")
    write(tmp_path / "Modelfile", modelfile)
    exists(server, b"GGUF model", b"GGUF projector")

    assert corral("create", "m", "-f", str(tmp_path / "Modelfile")) == 0

    files = {"mmproj.gguf": digest(b"GGUF projector")}
    if not fields:
        files["model.gguf"] = digest(b"GGUF model")
    assert server.requests[-1] == ("POST", "/api/create", {"model": "m", **fields, "files": files})


def test_no_modelfile_means_the_gguf_here(
    corral: Corral, server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "only.gguf", b"GGUF only")
    exists(server, b"GGUF only")

    assert corral("create", "m") == 0

    assert server.requests[-1][2] == {"model": "m", "files": {"only.gguf": digest(b"GGUF only")}}


def test_deprecated_parameters_are_warned_about(
    corral: Corral, server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "Modelfile", "FROM m\nPARAMETER penalize_newline true\n")
    exists(server)

    assert corral("create", "x", "-f", str(tmp_path / "Modelfile")) == 0

    assert server.requests[-1][2] == {"model": "x", "from": "m:latest"}
    assert capsys.readouterr().err.startswith(
        "warning: line 2: parameter penalize_newline is deprecated and was ignored\n"
    )


def test_translate_a_parsed_modelfile(tmp_path: Path) -> None:
    write(tmp_path / "a" / "lora.gguf", b"x")
    write(tmp_path / "b" / "lora.gguf", b"y")
    parsed = parse_modelfile("FROM qwen3:0.6b\nADAPTER a/lora.gguf\nLICENSE one\nLICENSE two\n")

    request = translate(parsed, tmp_path, resolve_from)

    assert request.fields == {"from": "qwen3:0.6b", "license": ["one", "two"]}
    assert request.files == {}
    assert request.adapters == {"lora.gguf": tmp_path / "a" / "lora.gguf"}
    twice = parse_modelfile("FROM m\nADAPTER a/lora.gguf\nADAPTER b/lora.gguf\n")
    with pytest.raises(CommandError, match=r"two files named lora\.gguf"):
        translate(twice, tmp_path, resolve_from)


@pytest.mark.parametrize(
    ("files", "argv", "error"),
    [
        ({}, ["-f", "nope/Modelfile"], "Error: specified Modelfile wasn't found: nope/Modelfile"),
        (
            {"Modelfile": "FROM ./m.gguf\nADAPTER ./gone.gguf\n", "m.gguf": "GGUF"},
            [],
            "Error: ADAPTER ./gone.gguf: no such file ({cwd}/gone.gguf)",
        ),
        (
            {"Modelfile": "FROM ./gone.gguf\n"},
            [],
            "Error: Modelfile: FROM ./gone.gguf: no such file or directory ({cwd}/gone.gguf)",
        ),
        (
            {"Modelfile": "FROM .\n", "a.gguf": "GGUF", "b.gguf": "GGUF"},
            [],
            "Error: Modelfile: FROM .: the directory holds 2 GGUF files; name one file",
        ),
        ({}, [], "Error: no Modelfile in {cwd} (name one with -f), and no model here: "),
        ({"Modelfile": b"FROM m\n\xff\xfe\xfa"}, [], "Error: Modelfile: not a text file"),
        (
            {"Modelfile": "FROM m\nPARAMETER bogus 1\n"},
            [],
            "Error: Modelfile: line 2: unknown parameter 'bogus'",
        ),
    ],
)
def test_file_mistakes_are_one_line_errors(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str | bytes],
    argv: list[str],
    error: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        write(tmp_path / name, text)

    assert corral("create", "m", *argv) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(error.format(cwd=tmp_path))
    assert server.requests == []


def test_modelfile_syntax_error_names_the_line(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(tmp_path / "Modelfile", "FROM llama3.2\n\nFROBNICATE yes\n")

    assert corral("create", "m", "-f", str(tmp_path / "Modelfile")) == 1

    err = capsys.readouterr().err
    assert err.startswith("Error: Modelfile: line 3: unknown instruction 'FROBNICATE'; ")
    assert err.count("\n") == 1
    assert server.requests == []


def test_server_errors_end_the_stream_with_one_line(
    corral: Corral,
    server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(tmp_path / "Modelfile", "FROM nope\n")
    chunks = ({"status": "pulling manifest"}, {"error": 'model "nope" not found'})
    server.on("POST", "/api/create", lambda body: ndjson(*chunks))

    assert corral("create", "m", "-f", str(tmp_path / "Modelfile")) == 1

    assert capsys.readouterr().err == (
        'gathering model components\npulling manifest\nError: model "nope" not found\n'
    )


def test_progress_rewrites_percentages_in_place_on_a_terminal() -> None:
    out = TTY()
    progress = Progress(out)
    progress.status("gathering model components")
    for done in (0, 1, 1, 2, 4):
        progress.percent("copying file x", done, 4)
    progress.update({"status": "quantizing F16 model to Q4_K_M", "digest": "0", "total": 10})
    progress.update({"status": "writing manifest"})
    progress.close()
    assert out.getvalue() == (
        "gathering model components\n"
        "\rcopying file x 0%\x1b[K\rcopying file x 25%\x1b[K"
        "\rcopying file x 50%\x1b[K\rcopying file x 100%\x1b[K"
        "\rquantizing F16 model to Q4_K_M 0%\x1b[K\n"
        "writing manifest\n"
    )


def test_progress_off_a_terminal_prints_only_whole_lines() -> None:
    out = io.StringIO()
    progress = Progress(out)
    for done in range(5):
        progress.percent("copying file x", done, 4)
    progress.update({"status": "pulling", "digest": "sha256:abc", "total": 10, "completed": 3})
    progress.status("success")
    progress.status("success")
    assert out.getvalue() == "copying file x 100%\nsuccess\n"
