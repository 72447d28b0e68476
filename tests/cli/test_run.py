"""``corral run`` one-shot: streamed output, piped stdin, --verbose stats, errors."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

import httpx
import pytest

from corral.cli._format import go_duration
from corral.cli.main import main
from corral.cli.run import WordWrap
from tests.cli.fakes import FakeServer, answer, ndjson

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
