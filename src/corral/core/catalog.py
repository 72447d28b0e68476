"""What /api/tags, /api/show and /api/ps say about models: pure views over the store.

GGUF headers are read once per blob (they never change: blobs are content-addressed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from corral.core.scheduler import LoadedModel
from corral.gguf import GGUFInfo, read_gguf, token_fingerprint
from corral.store.models import LocalModel
from corral.templates import TemplateError, compile_template
from corral.types import ModelDetails

__all__ = ["Catalog", "capabilities", "iso", "parameters_text"]

# Go's longest duration (~292 years) is what Ollama shows for "keep forever".
_FOREVER = timedelta(days=292 * 365)


def iso(moment: datetime) -> str:
    """ISO-8601 with a UTC offset and at most 6 fractional digits (Open WebUI parses it)."""
    return moment.astimezone(UTC).isoformat()


def _quote(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if any(c.isspace() for c in text) or not text else text


def parameters_text(params: dict[str, Any]) -> str:
    lines = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key:<30} {_quote(item)}")
    return "\n".join(lines)


def capabilities(info: GGUFInfo, model: LocalModel) -> list[str]:
    """What the model can do, judged from the chat template that will be used: the
    Modelfile's TEMPLATE if it has one (corral renders it), else the GGUF's own."""
    template = model.template or info.chat_template or ""
    caps = ["completion"]
    if _supports_tools(model.template) if model.template else "tools" in template:
        caps.append("tools")
    if "<think>" in template or "enable_thinking" in template or "reasoning_content" in template:
        caps.append("thinking")
    if model.projector_path is not None:
        caps.append("vision")
    if "tokenizer.ggml.fim_pre_token_id" in info.metadata:
        caps.append("insert")
    return caps


def _supports_tools(template: str) -> bool:
    try:
        return compile_template(template).supports_tools
    except TemplateError:
        return False  # refused at create time; a foreign store may still hold one


class Catalog:
    def __init__(self) -> None:
        self._gguf: dict[Path, GGUFInfo] = {}
        self._fingerprints: dict[tuple[Path, int], str | None] = {}
        # Set by the app factory: the memory estimate /api/show adds (corral.api.system).
        self.fit: Callable[[LocalModel], dict[str, Any]] | None = None

    def gguf(self, model: LocalModel) -> GGUFInfo:
        return self.gguf_file(model.model_path)

    def gguf_file(self, path: Path) -> GGUFInfo:
        info = self._gguf.get(path)
        if info is None:
            info = self._gguf[path] = read_gguf(path)
        return info

    def fingerprint(self, model: LocalModel, tokens: int) -> str | None:
        """A fingerprint of the model's first ``tokens`` tokens (see
        :func:`corral.gguf.token_fingerprint`)."""
        key = (model.model_path, tokens)
        if key not in self._fingerprints:
            self._fingerprints[key] = token_fingerprint(self.gguf_file(key[0]), tokens)
        return self._fingerprints[key]

    def details(self, model: LocalModel) -> ModelDetails:
        cfg = model.config
        if cfg.get("model_family"):
            return ModelDetails(
                format=cfg.get("model_format", "gguf"),
                family=cfg.get("model_family", ""),
                families=cfg.get("model_families"),
                parameter_size=cfg.get("model_type", ""),
                quantization_level=cfg.get("file_type", ""),
            )
        info = self.gguf(model)  # a foreign manifest without Ollama's config fields
        return ModelDetails(
            family=info.architecture,
            families=[info.architecture],
            parameter_size=info.parameter_size,
            quantization_level=info.quantization,
        )

    def tag(self, model: LocalModel) -> dict[str, Any]:
        name = model.name.display
        return {
            "name": name,
            "model": name,
            "modified_at": iso(model.modified_at),
            "size": model.size,
            "digest": model.digest,
            "details": self.details(model).model_dump(),
        }

    def show(self, model: LocalModel, modelfile: str) -> dict[str, Any]:
        info = self.gguf(model)
        template = model.template or info.chat_template or ""
        result: dict[str, Any] = {
            "license": model.license or "",
            "modelfile": modelfile,
            "parameters": parameters_text(model.params),
            "template": template,
            "details": self.details(model).model_dump(),
            "model_info": info.model_info(),
            "capabilities": capabilities(info, model),
            "modified_at": iso(model.modified_at),
        }
        if model.system:
            result["system"] = model.system
        if model.messages:
            result["messages"] = model.messages
        if self.fit is not None:
            result["fit"] = self.fit(model)
        return result

    def running(self, engines: list[LoadedModel]) -> dict[str, Any]:
        """One /api/ps entry for a model's engines (generation, and embeddings if loaded)."""
        model = engines[0].model
        name = model.name.display
        forever = datetime.now(UTC) + _FOREVER
        expires = max(e.expires_at or forever for e in engines)
        generation = next((e for e in engines if not e.spec.embedding), engines[0])
        return {
            "name": name,
            "model": name,
            "size": sum(e.size for e in engines),
            "digest": model.digest,
            "details": self.details(model).model_dump(),
            "expires_at": iso(expires),
            "size_vram": sum(e.vram for e in engines),  # what the offload plan placed
            "context_length": generation.spec.num_ctx,
        }
