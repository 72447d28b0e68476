"""The ``corral run MODEL`` chat session, driven through a monkeypatched ``input()``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cli.fakes import TTY, FakeServer, answer

Corral = Callable[..., int]


def feed(monkeypatch: pytest.MonkeyPatch, *lines: str | type[BaseException]) -> list[str]:
    """Make ``input()`` return ``lines`` in turn (an exception class is raised); EOF after."""
    prompts: list[str] = []
    pending = iter(lines)

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        item = next(pending, EOFError)
        if isinstance(item, type):
            raise item()
        return item

    monkeypatch.setattr("builtins.input", fake_input)
    return prompts


def replies(*texts: str) -> list[Callable[[dict[str, Any]], httpx.Response]]:
    """The load (an empty answer), then one answer per text, tokens split at ``|``."""

    def reply(tokens: list[str]) -> Callable[[dict[str, Any]], httpx.Response]:
        return lambda body: answer(*tokens)

    return [reply(t.split("|") if t else []) for t in ("", *texts)]


SYSTEM = {"role": "system", "content": "You are terse."}


def test_session_keeps_history_options_and_system(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.on("POST", "/api/chat", *replies("Hi|!", "Fine.", "Again."))
    prompts = feed(
        monkeypatch,
        "/set parameter temperature 0",
        "/set parameter stop <end> <eot>",
        "/set parameter stop ###",
        "/set system You are terse.",
        '"""',
        "line one",
        'line two"""',
        "  how are you?  ",
        "/clear",
        "again",
        "/bye",
        "never read",
    )

    assert corral("run", "smollm2:135m", stdin=TTY()) == 0

    load, first, second, third = server.chats()
    assert load == {"model": "smollm2:135m", "messages": [], "stream": True}
    options = {"temperature": 0, "stop": ["<end>", "<eot>", "###"]}
    user1 = {"role": "user", "content": "line one\nline two"}
    assert first == {
        "model": "smollm2:135m",
        "messages": [SYSTEM, user1],
        "stream": True,
        "options": options,
    }
    assert second["messages"] == [
        SYSTEM,
        user1,
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "how are you?"},
    ]
    assert second["options"] == options
    assert third["messages"] == [SYSTEM, {"role": "user", "content": "again"}]

    assert prompts == [">>> "] * 5 + ["... ", "... "] + [">>> "] * 4
    out = capsys.readouterr().out
    assert out == (
        "Set parameter 'temperature' to '0'\n"
        "Set parameter 'stop' to '<end>, <eot>'\n"
        "Set parameter 'stop' to '###'\n"
        "Set system message.\n"
        "Hi!\n\n"
        "Fine.\n\n"
        "Cleared session context\n"
        "Again.\n\n"
    )


def test_multiline_system_message_and_ctrl_d(
    corral: Corral, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.on("POST", "/api/chat", *replies("ok"))
    feed(monkeypatch, '/set system """You are', 'terse."""', "hi")  # then EOF: Ctrl-D

    assert corral("run", "m", stdin=TTY()) == 0

    assert server.chats()[1]["messages"] == [
        {"role": "system", "content": "You are\nterse."},
        {"role": "user", "content": "hi"},
    ]


def test_ctrl_c_stops_the_answer_and_returns_to_the_prompt(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed: list[bool] = []

    class Interrupted(httpx.SyncByteStream):
        """One token, then Ctrl-C; records that the client closed the response."""

        def __iter__(self) -> Iterator[bytes]:
            yield json.dumps({"message": {"content": "Once upon"}, "done": False}).encode() + b"\n"
            raise KeyboardInterrupt

        def close(self) -> None:
            closed.append(True)

    def interrupted(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, stream=Interrupted())

    server.on("POST", "/api/chat", lambda body: answer(), interrupted, lambda body: answer("Ok."))
    feed(monkeypatch, "tell a story", KeyboardInterrupt, "short please", "/bye")

    assert corral("run", "m", stdin=TTY()) == 0

    out = capsys.readouterr().out
    assert out == "Once upon\n\n\nUse Ctrl + d or /bye to exit.\nOk.\n\n"
    assert closed == [True]  # the connection was closed: the server stops generating
    # The interrupted turn is not part of the history.
    assert server.chats()[2]["messages"] == [{"role": "user", "content": "short please"}]


def test_unknown_model_fails_before_the_prompt(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = {"error": 'model "nope" not found, try pulling it first'}
    server.on("POST", "/api/chat", lambda body: httpx.Response(404, json=error))
    prompts = feed(monkeypatch, "hi")

    assert corral("run", "nope", stdin=TTY()) == 1

    assert prompts == []
    assert capsys.readouterr().err == 'Error: model "nope" not found, try pulling it first\n'


def test_verbose_show_help_and_unknown_commands(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.on(
        "POST",
        "/api/chat",
        lambda body: answer(),
        lambda body: answer("Yes.", eval_count=3, eval_duration=1_500_000_000),
    )
    server.json("POST", "/api/show", {"details": {"family": "llama", "parameter_size": "135M"}})
    feed(monkeypatch, "/set verbose", "/show info", "/?", "/nope", "ok?", "/set quiet")

    assert corral("run", "m", stdin=TTY()) == 0

    captured = capsys.readouterr()
    assert "Set 'verbose' mode.\n" in captured.out
    assert "  Model\n    architecture    llama\n    parameters      135M\n" in captured.out
    assert "Available Commands:\n  /set" in captured.out
    assert "Unknown command '/nope'. Type /? for help\n" in captured.out
    assert "Yes.\n\n" in captured.out
    assert captured.err.splitlines() == [
        "eval count:           3 token(s)",
        "eval duration:        1.5s",
        "eval rate:            2.00 tokens/s",
    ]


def test_server_error_during_a_turn_keeps_the_session(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crash = httpx.Response(500, json={"error": "engine crashed"})
    server.on(
        "POST", "/api/chat", lambda body: answer(), lambda body: crash, lambda body: answer("Back.")
    )
    feed(monkeypatch, "first", "second")

    assert corral("run", "m", stdin=TTY()) == 0

    captured = capsys.readouterr()
    assert captured.err == "\nError: engine crashed\n"
    assert captured.out.endswith("Back.\n\n\n")  # then Ctrl-D's newline
    assert server.chats()[2]["messages"] == [{"role": "user", "content": "second"}]
