"""The ``corral`` entry point: version, help, serve wiring, and what ``corral list`` imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from corral.cli.main import build_parser, main

HEAVY = ("pydantic", "pydantic_settings", "fastapi", "starlette", "uvicorn", "rich", "click")


def test_python_m_corral_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "corral", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == "corral version 0.1.0\n"


COMMANDS = {
    "serve": "Start the server",
    "worker": "Lend this machine's memory to a corral server (llama.cpp RPC)",
    "provision": "Pull and create the models a file lists, then exit",
    "create": "Create a model from a Modelfile",
    "show": "Show information for a model",
    "run": "Run a model",
    "stop": "Stop a running model",
    "list (ls)": "List models",
    "ps": "List running models",
    "cp": "Copy a model",
    "rm": "Remove a model",
    "pull": "Pull a model from a registry",
    "push": "Push a model to a registry",
    "login": "Store credentials for a registry",
    "logout": "Remove stored credentials for a registry",
    "bench": "Benchmark an Ollama- or OpenAI-compatible endpoint",
    "health": "Exit 0 when the server is ready, 1 otherwise",
    "info": "Show the server's hardware, engine, store and settings",
    "fit": "Say whether a model fits the server's RAM and VRAM",
    "help": "Help about any command",
}


@pytest.mark.parametrize("argv", [[], ["--help"], ["help"]])
def test_help_lists_every_command_with_a_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    if argv == ["--help"]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    else:
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: corral")
    rows = [
        re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith(" " * 4)
    ]
    assert dict(rows) == COMMANDS


@pytest.mark.parametrize("command", [c.split()[0] for c in COMMANDS if c != "serve"])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: corral {command}")


def test_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "create"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: corral create [-h] [-f FILE] [-q QUANTIZE] NAME")
    assert "-q QUANTIZE, --quantize QUANTIZE" in out

    assert main(["help", "nope"]) == 1
    assert capsys.readouterr().err == "Error: unknown command 'nope'; see corral --help\n"


def test_run_options_may_follow_prompt_words() -> None:
    args = build_parser().parse_args(["run", "m", "why", "--verbose", "is", "--think=low", "it"])
    assert (args.prompt, args.verbose, args.think) == (["why", "is", "it"], True, "low")


def test_serve_help_prints_the_environment_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "environment variables:\n  CORRAL_HOST " in out
    assert "[also OLLAMA_HOST]" in out
    assert "CORRAL_KEEP_ALIVE" in out


def test_run_help_says_no_server_is_started(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "does not start a server" in capsys.readouterr().out


@pytest.fixture
def fake_server_module(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    module = types.ModuleType("corral.api.server")
    module.run_server = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "corral.api.server", module)
    return calls


def test_serve_runs_the_server_with_settings(fake_server_module: list[Any]) -> None:
    assert main(["serve"]) == 0
    assert [s.host for s in fake_server_module] == ["127.0.0.1:11434"]


def test_serve_host_flag_overrides_the_environment(
    fake_server_module: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_HOST", "0.0.0.0:1234")
    assert main(["serve", "--host", ":8080"]) == 0
    assert [s.host for s in fake_server_module] == [":8080"]


def test_serve_rejects_a_bad_host(
    fake_server_module: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", "localhost:99999"]) == 1
    assert fake_server_module == []
    assert "Error: invalid settings" in capsys.readouterr().err


class _Tags(BaseHTTPRequestHandler):
    body = json.dumps(
        {"models": [{"name": "smollm2:135m", "digest": "ab" * 32, "size": 98_900_000}]}
    ).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tags_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Tags)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_command_modules_import_nothing_heavy() -> None:
    modules = ["manage", "create", "models", "run", "repl", "_images", "_repl_help"]
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__('corral.cli.' + name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_corral_list_imports_nothing_heavy(tags_server: str) -> None:
    env = {**os.environ, "CORRAL_HOST": tags_server}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "corral", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.splitlines()[1].split()[:4] == ["smollm2:135m", "abababababab", "98", "MB"]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "httpx" in imported  # the parse above did find the imports
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
