"""``corral pull/push/login/logout`` against a fake server (no registry needed)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import httpx
import pytest

from corral.cli.main import main
from corral.client import Client


def _run(argv: list[str], handler: object = None, stdin: str = "") -> int:
    def serve(request: httpx.Request) -> httpx.Response:
        assert callable(handler)
        return handler(request)  # type: ignore[no-any-return]

    return main(
        argv,
        client_factory=lambda: Client("http://corral.test", transport=httpx.MockTransport(serve)),
        stdin=io.StringIO(stdin),
    )


def test_pull_shows_progress_and_sends_insecure(capsys: pytest.CaptureFixture[str]) -> None:
    bodies: list[dict[str, object]] = []
    digest = "sha256:" + "ab" * 32
    lines = [
        {"status": "pulling manifest"},
        {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 100, "completed": 50},
        {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 100, "completed": 100},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/fit":  # the fit warning (tests/cli/test_fit.py)
            return httpx.Response(404, json={"error": "not here"})
        bodies.append(json.loads(request.content))
        assert request.url.path == "/api/pull"
        return httpx.Response(200, content="".join(json.dumps(x) + "\n" for x in lines))

    assert _run(["pull", "reg:5000/a/b:1", "--insecure"], handler) == 0
    assert bodies == [{"model": "reg:5000/a/b:1", "insecure": True, "stream": True}]
    err = capsys.readouterr().err
    assert "pulling manifest" in err and "success" in err and "pulling ababababab" in err


def test_pull_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = (
            '{"status":"pulling manifest"}\n{"error":"pull model manifest: file does not exist"}\n'
        )
        return httpx.Response(200, content=body)

    assert _run(["pull", "nope"], handler) == 1
    assert (
        capsys.readouterr().err.strip().endswith("Error: pull model manifest: file does not exist")
    )


def test_push_uses_api_push() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, content='{"status":"success"}\n')

    assert _run(["push", "reg:5000/a/b:1"], handler) == 0
    assert paths == ["/api/push"]


def test_login_logout_store_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path))
    assert _run(["login", "reg:5000", "-u", "alice", "--password-stdin"], stdin="pw\n") == 0
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"reg:5000": {"username": "alice", "password": "pw"}}
    assert _run(["logout", "reg:5000"]) == 0
    assert json.loads(path.read_text()) == {}
    assert _run(["logout", "reg:5000"]) == 1
