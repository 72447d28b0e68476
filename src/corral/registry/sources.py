"""Which source serves a model name, chosen by its host (the name's prefix).

``hf.co/...`` and ``huggingface.co/...`` are Hugging Face; every other host (the default
``registry.ollama.ai`` included) speaks the OCI distribution v2 protocol. Plain HTTP is used
for loopback registries (as Docker does) and when the caller says ``insecure``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from corral.names import ModelName

__all__ = ["Reference", "SourceKind", "is_loopback", "reference_for", "source_kind"]

_HF_HOSTS = frozenset({"hf.co", "huggingface.co"})


class SourceKind(Enum):
    OCI = "oci"
    HUGGINGFACE = "huggingface"


def source_kind(name: ModelName) -> SourceKind:
    return SourceKind.HUGGINGFACE if name.host.lower() in _HF_HOSTS else SourceKind.OCI


def _hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the bare host."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = _hostname(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Reference:
    """Where a model lives in an OCI registry: ``<base_url>/v2/<repository>/...``."""

    name: ModelName
    scheme: str

    @property
    def host(self) -> str:
        return self.name.host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.name.host}"

    @property
    def repository(self) -> str:
        return f"{self.name.namespace}/{self.name.model}"

    @property
    def tag(self) -> str:
        return self.name.tag


def reference_for(name: ModelName, *, insecure: bool = False) -> Reference:
    scheme = "http" if insecure or is_loopback(name.host) else "https"
    return Reference(name=name, scheme=scheme)
