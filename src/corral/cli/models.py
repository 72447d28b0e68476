"""``corral list``, ``corral ps`` and ``corral show``: what is stored, what is loaded.

Plain text, standard library only: ``corral list`` has to feel instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from corral.cli._format import (
    go_value,
    human_bytes,
    human_number,
    human_time,
    short_digest,
    table,
)

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["format_show", "list_models", "ps", "show", "show_field"]

SHOW_FIELDS = ("license", "modelfile", "parameters", "system", "template")
_MISSING = {
    "license": "No license was specified for this model.",
    "parameters": "No parameters were specified for this model.",
    "system": "No system message was specified for this model.",
    "template": "No prompt template was specified for this model.",
}


def list_models(args: argparse.Namespace, ctx: Context) -> int:
    models = ctx.client_factory().list().get("models") or []
    prefix = (args.prefix or "").lower()
    rows = [
        [
            str(m.get("name") or m.get("model") or ""),
            short_digest(str(m.get("digest") or "")),
            human_bytes(int(m.get("size") or 0)),
            human_time(m.get("modified_at"), "Never"),
        ]
        for m in models
        if str(m.get("name") or m.get("model") or "").lower().startswith(prefix)
    ]
    print(table(rows, ["NAME", "ID", "SIZE", "MODIFIED"]))
    return 0


def processor(size: int, size_vram: int) -> str:
    """Where a loaded model lives: ``100% CPU``, ``100% GPU`` or ``48%/52% CPU/GPU``."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def until(expires_at: str | None) -> str:
    """``4 minutes from now``; ``Forever`` when the model never expires; ``Stopping...``."""
    text = human_time(expires_at, "Forever")
    return "Stopping..." if text.endswith(" ago") else text


def ps(args: argparse.Namespace, ctx: Context) -> int:
    """Ollama's table; its CONTEXT column when the server reports ``context_length``."""
    models = ctx.client_factory().ps().get("models") or []
    models = [
        m
        for m in models
        if str(m.get("name") or m.get("model") or "").startswith(args.prefix or "")
    ]
    context = any("context_length" in m for m in models)
    rows = []
    for m in models:
        size = int(m.get("size") or 0)
        row = [
            str(m.get("name") or m.get("model") or ""),
            short_digest(str(m.get("digest") or "")),
            human_bytes(size),
            processor(size, int(m.get("size_vram") or 0)),
        ]
        if context:
            row.append(str(m.get("context_length") or ""))
        rows.append([*row, until(m.get("expires_at"))])
    header = ["NAME", "ID", "SIZE", "PROCESSOR", *(["CONTEXT"] if context else []), "UNTIL"]
    print(table(rows, header))
    return 0


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _section(title: str, rows: list[list[str]]) -> str:
    return f"  {title}\n" + table([["", *r] for r in rows]) + "\n"


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [[line] for line in lines[:n]]
    return [*rows, ["..."]] if len(lines) > n else rows


def _metadata_value(value: Any) -> str:
    """Like ``ollama show -v``: long arrays cut to about 10 columns, ``[a b ...+N more]``."""
    if not isinstance(value, list):
        return go_value(value)
    shown, width = 0, 1
    for i, item in enumerate(value):
        item_width = len(go_value(item)) + (2 if i else 0)
        if i and width + item_width > 10:
            break
        width, shown = width + item_width, shown + 1
    if shown < len(value):
        return go_value(value[:shown])[:-1] + f" ...+{len(value) - shown} more]"
    return go_value(value)


def _projector(projector: Mapping[str, Any]) -> list[list[str]]:
    arch = str(projector.get("general.architecture") or "")
    rows = [["architecture", arch]]
    if isinstance(count := projector.get("general.parameter_count"), int | float):
        rows.append(["parameters", human_number(int(count))])
    for key, label in (("embedding_length", "embedding length"), ("projection_dim", "dimensions")):
        if (value := projector.get(f"{arch}.vision.{key}")) is not None:
            rows.append([label, _number(value)])
    return rows


def _verbose_sections(info: Mapping[str, Any]) -> list[str]:
    """``ollama show --verbose``: every metadata key, sorted, then the tensors."""
    sections = []
    if model_info := info.get("model_info"):
        rows = [[key, _metadata_value(model_info[key])] for key in sorted(model_info)]
        sections.append(_section("Metadata", rows))
    if tensors := info.get("tensors"):
        rows = [
            [str(t.get("name", "")), str(t.get("type", "")), go_value(t.get("shape") or [])]
            for t in tensors
        ]
        sections.append(_section("Tensors", rows))
    return sections


def format_show(info: Mapping[str, Any], verbose: bool = False) -> str:
    """``ollama show``'s summary: Model, Capabilities, Projector, Parameters, (with
    ``verbose``: Metadata, Tensors), System, License."""
    details: Mapping[str, Any] = info.get("details") or {}
    model_info: Mapping[str, Any] = info.get("model_info") or {}
    rows: list[list[str]] = []
    if model_info:
        arch = str(model_info.get("general.architecture") or "")
        if arch:
            rows.append(["architecture", arch])
        params = details.get("parameter_size") or ""
        if not params and isinstance(model_info.get("general.parameter_count"), int | float):
            params = human_number(int(model_info["general.parameter_count"]))
        rows.append(["parameters", str(params)])
        for key, label in (
            ("context_length", "context length"),
            ("embedding_length", "embedding length"),
        ):
            if f"{arch}.{key}" in model_info:
                rows.append([label, _number(model_info[f"{arch}.{key}"])])
    else:
        rows.append(["architecture", str(details.get("family") or "")])
        rows.append(["parameters", str(details.get("parameter_size") or "")])
    rows.append(["quantization", str(details.get("quantization_level") or "")])
    sections = [_section("Model", rows)]
    if capabilities := info.get("capabilities"):
        sections.append(_section("Capabilities", [[str(c)] for c in capabilities]))
    if projector := info.get("projector_info"):
        sections.append(_section("Projector", _projector(projector)))
    if parameters := info.get("parameters"):
        param_rows = [line.split() for line in str(parameters).splitlines() if line.strip()]
        sections.append(_section("Parameters", param_rows))
    if verbose:
        sections += _verbose_sections(info)
    if system := info.get("system"):
        sections.append(_section("System", _head(str(system), 2)))
    if license_text := info.get("license"):
        sections.append(_section("License", _head(str(license_text), 2)))
    return "\n".join(sections)


def show_field(info: Mapping[str, Any], field: str) -> str:
    """One raw field (``--modelfile`` ...), or Ollama's note that it is empty."""
    value = info.get(field)
    if isinstance(value, list):  # some servers send the license as a list of texts
        value = "\n".join(map(str, value))
    return str(value).rstrip("\n") if value else _MISSING.get(field, "")


def show(args: argparse.Namespace, ctx: Context) -> int:
    info = ctx.client_factory().show(args.model, verbose=args.verbose)
    field = next((f for f in SHOW_FIELDS if getattr(args, f, False)), None)
    print(show_field(info, field) if field else format_show(info, args.verbose))
    return 0
