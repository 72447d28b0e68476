"""The ``corral run MODEL`` chat session, driven through a monkeypatched ``input()``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.cli._repl_help import HELP, SET_HELP, SHORTCUTS_HELP, SHOW_HELP
from tests.cli.fakes import TTY, FakeServer, answer, ndjson

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


def test_set_think_format_and_unknown_settings(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.on("POST", "/api/chat", *replies("A", "B", "C", "D", "E"))
    feed(
        monkeypatch,
        "/set think", "a", "/set think low", "b", "/set nothink", "c",
        "/set format json", "d", "/set noformat", "/set format yaml", "/set foo", "/set", "e",
    )  # fmt: skip

    assert corral("run", "qwen3", stdin=TTY()) == 0

    load, *turns = server.chats()
    assert "think" not in load
    assert [t.get("think") for t in turns] == [True, "low", False, False, False]
    assert [t.get("format") for t in turns] == [None, None, None, "json", None]
    assert capsys.readouterr().out == (
        "Set 'think' mode.\nA\n\n"
        "Set 'think' mode to 'low'.\nB\n\n"
        "Set 'nothink' mode.\nC\n\n"
        "Set format to 'json' mode.\nD\n\n"
        "Disabled format.\n"
        "Invalid or missing format. For 'json' mode use '/set format json'\n"
        "Unknown command '/set foo'. Type /? for help\n"
        f"{SET_HELP}\n"
        "E\n\n\n"
    )


def test_show_commands(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.on("POST", "/api/chat", *replies())
    info = {
        "parameters": 'stop "<|im_end|>"\ntemperature 0.2',
        "template": "{{ .Prompt }}",
        "system": "Be nice.",
    }
    server.json("POST", "/api/show", info)
    feed(
        monkeypatch,
        "/set parameter stop a b", "/set parameter temperature 0", "/show parameters",
        "/show system", "/show template", "/show license", "/show", "/show nope",
    )  # fmt: skip

    assert corral("run", "m", stdin=TTY()) == 0

    shows = [body for _, path, body in server.requests if path == "/api/show"]
    options = {"stop": ["a", "b"], "temperature": 0}
    assert shows == [{"model": "m", "options": options}] * 4
    assert capsys.readouterr().out == (
        "Set parameter 'stop' to 'a, b'\n"
        "Set parameter 'temperature' to '0'\n"
        "Model defined parameters:\n"
        '  stop "<|im_end|>"\n'
        "  temperature 0.2\n"
        "\n"
        "User defined parameters:\n"
        "  stop                           [a b]\n"
        "  temperature                    0\n"
        "\n"
        "Be nice.\n"
        "{{ .Prompt }}\n"
        "No license was specified for this model.\n"
        f"{SHOW_HELP}\n"
        "Unknown command '/show nope'. Type /? for help\n"
        "\n"
    )


def test_load_switches_model_and_keeps_nothing_of_the_old_session(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = httpx.Response(404, json={"error": "model 'nope' not found"})
    load, hello, again, x = replies("Hello.", "Again.", "X.")
    server.on("POST", "/api/chat", load, hello, lambda body: missing, again, load, x)
    feed(
        monkeypatch,
        "/set system Be brief.", "/set parameter seed 1", "hi", "/load nope", "again",
        "/load other", "x", "/load",
    )  # fmt: skip

    assert corral("run", "m", "--keepalive", "1m", stdin=TTY()) == 0

    chats = server.chats()
    assert chats[2] == {"model": "nope", "messages": [], "stream": True, "keep_alive": "1m"}
    assert chats[3]["model"] == "m"
    assert chats[3]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "again"},
    ]
    assert chats[3]["options"] == {"seed": 1}
    assert chats[4] == {"model": "other", "messages": [], "stream": True, "keep_alive": "1m"}
    assert chats[5] == {
        "model": "other",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "keep_alive": "1m",
    }
    out = capsys.readouterr().out
    assert "Loading model 'nope'\nCouldn't find model 'nope'\nAgain.\n\n" in out
    assert "Loading model 'other'\nX.\n\n" in out
    assert out.endswith("Usage:\n  /load <modelname>\n\n")


def test_save_creates_a_model_from_the_session(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.on("POST", "/api/chat", *replies("Hello."))
    invalid = httpx.Response(400, json={"error": "invalid model name"})
    server.on(
        "POST", "/api/create", lambda body: ndjson({"status": "success"}), lambda body: invalid
    )
    feed(
        monkeypatch,
        "/set system Be brief.", "/set parameter temperature 0.5", "hi", "/save mine",
        "/save bad:na:me", "/save",
    )  # fmt: skip

    assert corral("run", "m", stdin=TTY()) == 0

    creates = [body for _, path, body in server.requests if path == "/api/create"]
    assert creates[0] == {
        "model": "mine",
        "from": "m",
        "system": "Be brief.",
        "parameters": {"temperature": 0.5},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
        ],
    }
    assert creates[1]["model"] == "bad:na:me"
    captured = capsys.readouterr()
    assert "Created new model 'mine'\n" in captured.out
    assert captured.out.endswith("Usage:\n  /save <modelname>\n\n")
    assert captured.err == "Error: invalid model name\n"


def test_save_of_a_fresh_session_sends_only_the_model(
    corral: Corral, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.on("POST", "/api/chat", *replies())
    server.on("POST", "/api/create", lambda body: ndjson({"status": "success"}))
    feed(monkeypatch, "/save copy")

    assert corral("run", "m", stdin=TTY()) == 0

    assert server.requests[-1] == ("POST", "/api/create", {"model": "copy", "from": "m"})


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("/?", HELP),
        ("/help", HELP),
        ("/? set", SET_HELP),
        ("/? /set", SET_HELP),
        ("/help show", SHOW_HELP),
        ("/? shortcuts", SHORTCUTS_HELP),
    ],
)
def test_help(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    line: str,
    text: str,
) -> None:
    server.on("POST", "/api/chat", *replies())
    feed(monkeypatch, line)
    assert corral("run", "m", stdin=TTY()) == 0
    assert capsys.readouterr().out == text + "\n\n"
    assert "/load <model>" in HELP and "/save <model>" in HELP
    assert "/set think" in SET_HELP and "/set nothink" in SET_HELP


def test_a_line_starting_with_an_image_path_is_a_message(
    corral: Corral,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    cat = tmp_path / "cat.png"
    cat.write_bytes(b"\x89PNG\r\n\x1a\n")
    server.on("POST", "/api/chat", *replies("A cat.", "Grey."))
    server.json("POST", "/api/show", {"capabilities": ["vision"]})
    feed(monkeypatch, f"{cat} what is this?", "what colour?")

    assert corral("run", "gemma3", stdin=TTY()) == 0

    image = {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}
    assert server.chats()[1]["messages"] == [image]
    assert server.chats()[2]["messages"][:2] == [image, {"role": "assistant", "content": "A cat."}]
    assert [p for _, p in server.paths()].count("/api/show") == 1  # asked once per session
    assert capsys.readouterr().err == f"Added image '{cat}'\n"
