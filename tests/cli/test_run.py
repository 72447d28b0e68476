"""``corral run`` one-shot: streamed output, piped stdin, --verbose stats, errors."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.cli._format import go_duration
from corral.cli.main import main
from corral.cli.run import WordWrap
from tests.cli.fakes import TTY, FakeServer, answer, ndjson

Corral = Callable[..., int]

STATS = {
    "total_duration": 1_234_567_891,
    "load_duration": 12_345_678,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 130_000_000,
    "eval_count": 290,
    "eval_duration": 2_900_000_000,
}


def test_one_shot_streams_the_answer(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: answer("Hello", ", ", "world", "!"))

    assert corral("run", "smollm2:135m", "Say", "hello") == 0

    captured = capsys.readouterr()
    assert captured.out == "Hello, world!\n"
    assert captured.err == ""
    assert server.chats() == [
        {
            "model": "smollm2:135m",
            "messages": [{"role": "user", "content": "Say hello"}],
            "stream": True,
        }
    ]


def test_one_shot_writes_each_token_as_it_arrives(
    corral: Corral, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.setattr("sys.stdout", Recorder())
    server.on("POST", "/api/chat", lambda body: answer("one", " two", " three"))

    assert corral("run", "m", "count") == 0

    assert writes == ["one", " two", " three", "\n"]


def test_piped_stdin_is_appended_to_the_prompt_and_flags_are_sent(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: answer('{"ok": true}'))

    status = corral(
        "run", "m", "Summarize:", "--keepalive", "10m", "--format", "json",
        stdin=io.StringIO("line 1\nline 2\n"),
    )  # fmt: skip

    assert status == 0
    assert capsys.readouterr().out == '{"ok": true}\n'
    assert server.chats() == [
        {
            "model": "m",
            "messages": [{"role": "user", "content": "Summarize:\n\nline 1\nline 2\n"}],
            "stream": True,
            "format": "json",
            "keep_alive": "10m",
        }
    ]


def test_verbose_prints_ollama_stats_to_stderr(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: answer("Hi.", **STATS))

    assert corral("run", "m", "hi", "--verbose") == 0

    captured = capsys.readouterr()
    assert captured.out == "Hi.\n\n"
    assert captured.err == (
        "total duration:       1.234567891s\n"
        "load duration:        12.345678ms\n"
        "prompt eval count:    26 token(s)\n"
        "prompt eval duration: 130ms\n"
        "prompt eval rate:     200.00 tokens/s\n"
        "eval count:           290 token(s)\n"
        "eval duration:        2.9s\n"
        "eval rate:            100.00 tokens/s\n"
    )


def test_unknown_model_prints_error_and_exits_1(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"error": 'model "nope" not found, try pulling it first'}
    server.on("POST", "/api/chat", lambda body: httpx.Response(404, json=error))

    assert corral("run", "nope", "hi") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == 'Error: model "nope" not found, try pulling it first\n'


def test_error_mid_stream_exits_1(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = ({"message": {"content": "par"}, "done": False}, {"error": "engine crashed"})
    server.on("POST", "/api/chat", lambda body: ndjson(*chunks))

    assert corral("run", "m", "hi") == 1

    captured = capsys.readouterr()
    assert captured.out == "par"
    assert captured.err == "Error: engine crashed\n"


def test_no_server_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")

    assert main(["run", "m", "hi"], stdin=io.StringIO("")) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"Error: could not connect to corral at http://127.0.0.1:{port}; "
        'start it with "corral serve" (or "make run")\n'
    )


def test_empty_piped_stdin_only_loads_the_model(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: answer())
    assert corral("run", "m", stdin=io.StringIO("")) == 0
    assert server.chats() == [{"model": "m", "messages": [], "stream": True}]
    assert capsys.readouterr().out == ""


def test_word_wrap_moves_whole_words_to_the_next_line() -> None:
    out = io.StringIO()
    wrap = WordWrap(out, 12)
    for token in ("The quick", " brown fox", " jumps over", "\nthe lazy dog", " abcdefghijklmnop"):
        wrap.write(token)
    wrap.finish()
    assert out.getvalue() == "The quick \nbrown fox \njumps over\nthe lazy dog\nabcdefghijkl\nmnop"


def test_no_wrap_when_width_is_none() -> None:
    out = io.StringIO()
    wrap = WordWrap(out, None)
    wrap.write("a " * 100)
    wrap.finish()
    assert out.getvalue() == "a " * 100


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (12_345_678, "12.345678ms"),
        (1_000_000_000, "1s"),
        (61_500_000_000, "1m1.5s"),
        (3_600_000_000_000, "1h0m0s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def thinking_answer(thoughts: list[str], tokens: list[str]) -> httpx.Response:
    chunks: list[dict[str, Any]] = [
        {"message": {"role": "assistant", "content": "", "thinking": t}, "done": False}
        for t in thoughts
    ]
    chunks += [{"message": {"role": "assistant", "content": t}, "done": False} for t in tokens]
    return ndjson(*chunks, {"message": {"role": "assistant", "content": ""}, "done": True})


@pytest.mark.parametrize(
    ("flags", "think"),
    [(["--think"], True), (["--think=false"], False), (["--think=high"], "high"), ([], None)],
)
def test_think_flag_is_sent(
    corral: Corral, server: FakeServer, flags: list[str], think: bool | str | None
) -> None:
    server.on("POST", "/api/chat", lambda body: answer("ok"))

    assert corral("run", "qwen3", *flags, "hi", "there") == 0  # --think takes no word after it

    (chat,) = server.chats()
    assert chat["messages"] == [{"role": "user", "content": "hi there"}]
    assert chat.get("think", "unset") == ("unset" if think is None else think)


def test_thinking_is_shown_between_markers_before_the_answer(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: thinking_answer(["Let me", " think."], ["Hi", "!"]))

    assert corral("run", "qwen3", "hi", "--think") == 0

    assert capsys.readouterr().out == "Thinking...\nLet me think.\n...done thinking.\n\nHi!\n"


def test_thinking_is_grey_on_a_terminal(
    corral: Corral, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = TTY()
    monkeypatch.setattr("sys.stdout", out)
    server.on("POST", "/api/chat", lambda body: thinking_answer(["Hmm.\n"], ["Yes."]))

    assert corral("run", "qwen3", "hi", "--nowordwrap") == 0

    grey, bold, reset = "\x1b[90m", "\x1b[1m", "\x1b[0m"
    assert out.getvalue() == (
        f"{grey}{bold}Thinking...\n{reset}{grey}Hmm.\n"
        f"{grey}{bold}...done thinking.\n\n{reset}Yes.\n"
    )


def test_hidethinking_prints_only_the_answer_and_keeps_think(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/chat", lambda body: thinking_answer(["secret"], ["Hi"]))

    assert corral("run", "qwen3", "--think", "--hidethinking", "hi") == 0

    assert capsys.readouterr().out == "Hi\n"
    assert server.chats()[0]["think"] is True


def test_format_takes_a_json_schema(corral: Corral, server: FakeServer) -> None:
    server.on("POST", "/api/chat", lambda body: answer("{}"))
    schema = '{"type": "object", "properties": {"age": {"type": "integer"}}}'

    assert corral("run", "m", "--format", schema, "age?") == 0

    assert server.chats()[0]["format"] == json.loads(schema)


def test_bad_format_is_an_error(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert corral("run", "m", "--format", "yaml", "hi") == 1
    assert capsys.readouterr().err == (
        "Error: invalid --format 'yaml': use \"json\" or a JSON schema object\n"
    )
    assert server.requests == []


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    cat = tmp_path / "cat.png"
    cat.write_bytes(PNG)
    dog = tmp_path / "my dog.JPG"
    dog.write_bytes(b"\xff\xd8\xff\xe0" + b"\x01" * 16)
    return cat, dog


def test_image_paths_become_images_for_a_vision_model(
    corral: Corral,
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
    pictures: tuple[Path, Path],
) -> None:
    cat, dog = pictures
    server.json("POST", "/api/show", {"capabilities": ["completion", "vision"]})
    server.on("POST", "/api/chat", lambda body: answer("Two pets."))

    prompt = f"compare {cat}, and '{dog}' please"
    assert corral("run", "gemma3", prompt) == 0

    assert server.paths() == [("POST", "/api/show"), ("POST", "/api/chat")]
    assert server.chats()[0]["messages"] == [
        {
            "role": "user",
            "content": "compare, and please",
            "images": [base64.b64encode(PNG).decode(), base64.b64encode(dog.read_bytes()).decode()],
        }
    ]
    captured = capsys.readouterr()
    assert captured.out == "Two pets.\n"
    assert captured.err == f"Added image '{cat}'\nAdded image '{dog}'\n"


def test_image_paths_stay_text_for_other_models(
    corral: Corral, server: FakeServer, pictures: tuple[Path, Path]
) -> None:
    cat, _ = pictures
    server.json("POST", "/api/show", {"capabilities": ["completion"]})
    server.on("POST", "/api/chat", lambda body: answer("?"))

    assert corral("run", "smollm2", "what is", str(cat), "/no/such/file.png") == 0

    content = f"what is {cat} /no/such/file.png"
    assert server.chats()[0]["messages"] == [{"role": "user", "content": content}]


def test_prompt_without_image_paths_does_not_ask_for_capabilities(
    corral: Corral, server: FakeServer
) -> None:
    server.on("POST", "/api/chat", lambda body: answer("."))
    assert corral("run", "m", "draw", "a", "cat.png") == 0  # no such file here
    assert server.paths() == [("POST", "/api/chat")]


def test_a_file_that_is_not_an_image_is_an_error(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake = tmp_path / "fake.webp"
    fake.write_text("not an image")
    server.json("POST", "/api/show", {"capabilities": ["vision"]})

    assert corral("run", "gemma3", "see", str(fake)) == 1

    assert capsys.readouterr().err == (
        f"Error: couldn't process image {fake}: not a PNG, JPEG or WebP image\n"
    )
    assert server.chats() == []
