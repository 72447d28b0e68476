"""``corral health``: exit codes for ready, not ready and no server."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from corral.cli.main import main
from tests.cli.fakes import FakeServer

Corral = Callable[..., int]


def test_ready_server_exits_0(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/health/ready", {"status": "ok"})
    assert corral("health") == 0
    assert capsys.readouterr().out == '{"status": "ok"}\n'


def test_not_ready_server_exits_1_and_prints_the_reason(
    corral: Corral, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json("GET", "/health/ready", {"status": "loading", "reason": "store busy"}, 503)
    assert corral("health") == 1
    assert capsys.readouterr().out == '{"status": "loading", "reason": "store busy"}\n'


def test_unreachable_server_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CORRAL_HOST", f"127.0.0.1:{port}")

    assert main(["health"]) == 1  # the real client, from the environment

    assert capsys.readouterr().err == (
        f"Error: could not connect to corral at http://127.0.0.1:{port}; "
        'start it with "corral serve" (or "make run")\n'
    )
