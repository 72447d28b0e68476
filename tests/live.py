"""A real ``corral serve`` in a subprocess on a free port, as a user would run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_pids(parent: int) -> list[int]:
    """llama-server processes whose parent is ``parent``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"llama-server" in cmdline:
            pids.append(int(entry.name))
    return pids


def engine_port(pid: int) -> int:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(args[args.index(b"--port") + 1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
    return " Z " not in stat  # a zombie is gone for our purposes


@dataclass
class LiveServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)


def short_generate(url: str, model: str = "smollm2:135m") -> httpx.Response:
    """A four-token answer: proof that the server (still) serves ``model``."""
    body = {"model": model, "prompt": "Hi", "stream": False, "options": {"num_predict": 4}}
    return httpx.post(url + "/api/generate", json=body, timeout=120)


def start_server(home: Path, **env: str) -> LiveServer:
    port = free_port()
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "OLLAMA_"))},
        "CORRAL_HOME": str(home),
        "CORRAL_HOST": f"127.0.0.1:{port}",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "serve"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", home, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"corral serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"corral serve never became ready: {log.read_text()[-2000:]}")


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """An app built in the test (e.g. on a fake engine) served over real HTTP on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# -- a tools-aware model on the real engine (SmolLM2 with a ChatML template that renders tools)

TOOLS_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{- if and $.Tools $last }}
Answer with JSON {"name": function name, "arguments": object}. Functions:
{{ range $.Tools }}{{ . }}
{{ end }}{{ end }}
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{- if .ToolCalls }}
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{ end }}
{{- else }}
{{ .Content }}{{ end }}<|im_end|>
{{ else if eq .Role "tool" }}<|im_start|>tool
{{ .Content }}<|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}"""  # noqa: E501

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALL_SCHEMA = {
    "type": "object",
    "required": ["name", "arguments"],
    "properties": {
        "name": {"const": "get_weather"},
        "arguments": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "maxLength": 20}},
        },
    },
}
"""The answer constrained to a call of WEATHER_TOOL: a 135M model's judgement is not under
test, the tool-call plumbing is."""


def tools_model(server: LiveServer) -> str:
    """``smol-tools:1`` in ``server``'s store (SmolLM2 with TOOLS_TEMPLATE), made once."""
    from corral.names import parse_name
    from corral.store.create import create_model
    from corral.store.manifests import MediaType
    from corral.store.models import Store

    store = Store(server.models_dir)
    name = parse_name("smol-tools:1")
    if store.manifests.get(name) is None:
        base = store.get("smollm2:135m")
        create_model(
            store, name, base.model_digest, text_layers={MediaType.TEMPLATE: TOOLS_TEMPLATE}
        )
    return name.display
