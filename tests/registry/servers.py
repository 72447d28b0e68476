"""Real servers for the registry tier: Debian's ``docker-registry`` (the CNCF distribution
registry) on 127.0.0.1, and a small HTTP proxy in front of it that can throttle, cut, corrupt,
count bytes, and demand bearer tokens from its own token realm."""

from __future__ import annotations

import base64
import http.client
import json
import random
import shutil
import socket
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # bcrypt for htpasswd; Python 3.11 still has it

TOKEN = "test-token-7f3a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    root: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(workdir: Path, *, users: dict[str, str] | None = None) -> Registry:
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed (make test installs it)"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if users:
        lines = [
            f"{u}:{crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}"
            for u, p in users.items()
        ]
        (workdir / "htpasswd").write_text("\n".join(lines) + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: corral-test\n    path: {workdir / 'htpasswd'}\n"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Registry(f"127.0.0.1:{port}", process, workdir)
        except OSError:
            assert process.poll() is None, (workdir / "registry.log").read_text()
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("docker-registry did not start")


@dataclass
class ProxyConfig:
    upstream: str
    rate: float | None = None  # bytes per second for blob bodies
    flip_at: int | None = None  # flip one byte at this offset of every blob body
    bearer: tuple[str, str] | None = None  # (user, password) the token realm accepts
    drop_chance: float = 0.0  # per blob GET: drop the connection (before or mid-body)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    drops: int = 0  # connections dropped so far
    blob_bytes: int = 0  # blob body bytes sent to clients
    blob_gets: int = 0
    token_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        cfg = self.server.cfg
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if cfg.bearer is not None:
            if self.path.startswith("/token"):
                return self._token(cfg)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                realm = f"http://{self.headers['Host']}/token"
                scope = "repository:library/x:pull"
                challenge = f'Bearer realm="{realm}",service="corral-test",scope="{scope}"'
                return self._reply(401, b'{"errors":[]}', {"WWW-Authenticate": challenge})
        is_blob = self.command == "GET" and "/blobs/sha256:" in self.path
        cut_at: int | None = None
        if is_blob and cfg.drop_chance:
            with cfg.lock:
                dropping = cfg.rng.random() < cfg.drop_chance
                if dropping:
                    cfg.drops += 1
                    cut_at = cfg.rng.choice([0, cfg.rng.randrange(1, 4 << 20)])
            if cut_at == 0:  # no answer at all
                self.close_connection = True
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization",)}
        upstream = http.client.HTTPConnection(cfg.upstream, timeout=60)
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        self.end_headers()
        if is_blob:
            with cfg.lock:
                cfg.blob_gets += 1
        offset = 0
        try:
            while chunk := response.read(64 << 10):
                if (
                    is_blob
                    and cfg.flip_at is not None
                    and offset <= cfg.flip_at < offset + len(chunk)
                ):
                    i = cfg.flip_at - offset
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if cut_at is not None and offset + len(chunk) > cut_at:
                    self.wfile.write(chunk[: cut_at - offset])
                    self.close_connection = True  # mid-body: the client sees a short read
                    return
                self.wfile.write(chunk)
                offset += len(chunk)
                if is_blob:
                    with cfg.lock:
                        cfg.blob_bytes += len(chunk)
                    if cfg.rate:
                        time.sleep(len(chunk) / cfg.rate)
        except OSError:
            self.close_connection = True
        finally:
            upstream.close()

    def _token(self, cfg: ProxyConfig) -> None:
        assert cfg.bearer is not None
        cfg.token_requests.append(self.path)
        expected = "Basic " + base64.b64encode(":".join(cfg.bearer).encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._reply(401, b'{"details":"bad login"}', {})
        body = json.dumps({"token": TOKEN}).encode()
        self._reply(200, body, {"Content-Type": "application/json"})


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    cfg: ProxyConfig


class Proxy:
    def __init__(self, cfg: ProxyConfig) -> None:
        self.cfg = cfg
        self.server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self.server.cfg = cfg
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
