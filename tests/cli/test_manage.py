"""``corral cp``, ``corral rm``, ``corral stop``: the requests, what they print, exit codes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from corral.cli.main import main
from tests.cli.fakes import FakeServer, ndjson

Corral = Callable[..., int]

UNLOADED = {"model": "m", "response": "", "done": True, "done_reason": "unload"}


def not_found(name: str) -> Callable[[object], httpx.Response]:
    return lambda body: httpx.Response(404, json={"error": f"model '{name}' not found"})


def test_cp(corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.on("POST", "/api/copy", lambda body: httpx.Response(200))

    assert corral("cp", "llama3.2", "mine:v1") == 0

    assert server.requests == [
        ("POST", "/api/copy", {"source": "llama3.2", "destination": "mine:v1"})
    ]
    assert capsys.readouterr().out == "copied 'llama3.2' to 'mine:v1'\n"


def test_cp_unknown_source(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/copy", not_found("nope"))
    assert corral("cp", "nope", "x") == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "Error: model 'nope' not found\n")


def test_rm_unloads_then_deletes_each_model(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/generate", lambda body: ndjson(UNLOADED), not_found("b"))
    server.on("DELETE", "/api/delete", lambda body: httpx.Response(200))

    assert corral("rm", "a", "b:latest") == 0

    assert server.requests == [
        ("POST", "/api/generate", {"model": "a", "keep_alive": 0}),
        ("DELETE", "/api/delete", {"model": "a"}),
        ("POST", "/api/generate", {"model": "b:latest", "keep_alive": 0}),
        ("DELETE", "/api/delete", {"model": "b:latest"}),
    ]
    assert capsys.readouterr().out == "deleted 'a'\ndeleted 'b:latest'\n"


def test_rm_stops_at_the_first_model_it_cannot_delete(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/generate", lambda body: ndjson(UNLOADED))
    server.on("DELETE", "/api/delete", lambda body: httpx.Response(200), not_found("typo"))

    assert corral("rm", "a", "typo", "c") == 1

    captured = capsys.readouterr()
    assert captured.out == "deleted 'a'\n"
    assert captured.err == "Error: model 'typo' not found\n"
    assert ("DELETE", "/api/delete", {"model": "c"}) not in server.requests


def test_rm_needs_a_name(corral: Corral, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        corral("rm")
    assert exit_info.value.code == 2
    assert "the following arguments are required: MODEL" in capsys.readouterr().err


def test_stop_sends_keep_alive_0_and_prints_nothing(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/generate", lambda body: ndjson(UNLOADED))

    assert corral("stop", "smollm2:135m") == 0

    assert server.requests == [
        ("POST", "/api/generate", {"model": "smollm2:135m", "keep_alive": 0})
    ]
    assert capsys.readouterr() == ("", "")


def test_stop_unknown_model(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.on("POST", "/api/generate", not_found("nope"))
    assert corral("stop", "nope") == 1
    assert capsys.readouterr().err == 'Error: couldn\'t find model "nope" to stop\n'


def test_stop_other_server_errors_pass_through(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"error": "engine crashed"}
    server.on("POST", "/api/generate", lambda body: httpx.Response(500, json=error))
    assert corral("stop", "m") == 1
    assert capsys.readouterr().err == "Error: engine crashed\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["cp", "a", "b"],
        ["rm", "a"],
        ["stop", "a"],
        ["show", "a", "-v"],
        ["ps"],
        ["create", "m", "-f", "{tmp}/Modelfile"],
    ],
)
def test_unreachable_server_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CORRAL_HOST", f"127.0.0.1:{port}")
    (tmp_path / "Modelfile").write_text("FROM llama3.2\n")

    assert main([a.format(tmp=tmp_path) for a in argv]) == 1

    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"Error: could not connect to corral at http://127.0.0.1:{port}; "
        'start it with "corral serve" (or "make run")'
    )
    assert err[:-1] in ([], ["gathering model components"])
