"""Where the server listens and where clients find it.

``CORRAL_HOST``, falling back to ``OLLAMA_HOST``.

Kept free of heavy imports: the CLI reads it before anything else, and ``corral list``
should feel instant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DEFAULT_PORT", "HostAddress", "client_base_url", "parse_host"]

DEFAULT_PORT = 11434


@dataclass(frozen=True, slots=True)
class HostAddress:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def for_client(self) -> HostAddress:
        """A wildcard bind address is reached on loopback."""
        if self.host in ("0.0.0.0", "", "::"):
            return HostAddress(self.scheme, "127.0.0.1", self.port)
        return self


def parse_host(value: str | None) -> HostAddress:
    """Parse Ollama's forms: ``0.0.0.0``, ``:8080``, ``host:port``, ``http://h:p``, ``[::1]:p``."""
    value = (value or "").strip()
    scheme = "http"
    if "://" in value:
        scheme, value = value.split("://", 1)
    value = value.rstrip("/")
    host, port = value, DEFAULT_PORT
    if value.startswith("["):  # [::1]:port
        end = value.find("]")
        host = value[1:end]
        rest = value[end + 1 :]
        if rest.startswith(":") and rest[1:]:
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        if port_text:
            port = int(port_text)
    if not host:
        host = "127.0.0.1"
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return HostAddress(scheme, host, port)


def client_base_url() -> str:
    """The server's URL for clients, from the environment alone."""
    raw = os.environ.get("CORRAL_HOST") or os.environ.get("OLLAMA_HOST")
    return parse_host(raw).for_client().url
