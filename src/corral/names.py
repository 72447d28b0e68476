"""Model names: ``[host/][namespace/]model[:tag]``, with Ollama's defaults and rules.

``smollm2:135m`` is ``registry.ollama.ai/library/smollm2:135m``. Every part is checked
against a strict pattern so that no name can address a path outside the store (a part
always starts with a letter or digit, so ``..`` and empty parts are impossible).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.errors import InvalidModelName

__all__ = ["DEFAULT_HOST", "DEFAULT_NAMESPACE", "DEFAULT_TAG", "ModelName", "parse_name"]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 512

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,349}(:[0-9]{1,5})?$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_HF_HOSTS = {"hf.co", "huggingface.co"}


@dataclass(frozen=True, slots=True)
class ModelName:
    """A fully qualified model name. Compare with :meth:`key` for Ollama's case-insensitivity."""

    host: str
    namespace: str
    model: str
    tag: str

    def __str__(self) -> str:
        return self.display

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """The shortest form Ollama shows: defaults left out."""
        if self.host == DEFAULT_HOST:
            if self.namespace == DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return self.full

    @property
    def key(self) -> str:
        return self.full.lower()

    @property
    def is_huggingface(self) -> bool:
        return self.host.lower() in _HF_HOSTS

    def manifest_parts(self) -> tuple[str, str, str, str]:
        """Path parts below ``manifests/``; safe because every part was validated."""
        return (self.host, self.namespace, self.model, self.tag)


def _fail(name: str, why: str) -> InvalidModelName:
    return InvalidModelName(f'invalid model name "{name}": {why}')


def parse_name(name: str) -> ModelName:
    """Parse and validate a model name, filling in Ollama's defaults."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidModelName("model name is required")
    raw = name
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise _fail(raw[:40] + "...", f"longer than {MAX_NAME_LENGTH} characters")
    for scheme in ("https://", "http://"):
        if name.startswith(scheme):
            name = name[len(scheme) :]
    if "\\" in name or any(ord(c) < 32 for c in name):
        raise _fail(raw, "contains a backslash or a control character")

    path, tag = name, DEFAULT_TAG
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        path, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise _fail(raw, "the tag after ':' is empty")
    parts = path.split("/")
    if any(p == "" for p in parts):
        raise _fail(raw, "empty part between slashes (write host/namespace/model:tag)")
    if len(parts) > 3:
        raise _fail(raw, "too many slashes (write host/namespace/model:tag)")
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        host, (namespace, model) = DEFAULT_HOST, parts
        if "." in namespace or ":" in namespace:
            # 'hf.co/repo' or 'localhost:5000/model': a host without a namespace.
            host, namespace = namespace, DEFAULT_NAMESPACE
    else:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]

    if ".." in (host, namespace, model, tag):
        raise _fail(raw, "'..' is not allowed")
    if not _HOST.match(host):
        raise _fail(
            raw, f"host {host!r} must be letters, digits, '.', '-', '_' and an optional :port"
        )
    for label, value in (("namespace", namespace), ("model", model)):
        if not _PART.match(value):
            raise _fail(
                raw,
                f"{label} {value!r} must start with a letter or digit and contain only "
                "letters, digits, '.', '-' and '_' (at most 80)",
            )
    if not _TAG.match(tag):
        raise _fail(
            raw,
            f"tag {tag!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '-' and '_' (at most 80)",
        )
    return ModelName(host=host, namespace=namespace, model=model, tag=tag)
