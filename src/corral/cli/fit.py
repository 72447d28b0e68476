"""``corral fit MODEL``: will it fit the server's machine, before a multi-GB download?

Asks the server (``POST /api/fit``): a model it has is read from the store; any other is
looked up in its registry (the manifest and the GGUF header through ranged requests).
Exit status 0 when the model can run there, 1 when it cannot (or on an error).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["fit", "format_fit"]

GIB = 1024**3


def _gib(value: Any) -> str:
    return f"{int(value or 0) / GIB:.2f} GiB"


def _yes(flag: Any) -> str:
    return "yes" if flag else "no"


def _vram_lines(report: Mapping[str, Any]) -> list[str]:
    vram, layers = report.get("vram") or {}, report.get("layers") or {}
    gpus = vram.get("gpus") or []
    if not gpus:
        return ["no usable GPU"]
    lines = [
        f"{g['name']}: {_gib(g['free'])} free of {_gib(g['total'])}; "
        f"{g['layers']} layers, {_gib(g['needed'])}"
        for g in gpus
    ]
    placed, total = layers.get("gpu", 0), layers.get("total", 0)
    if vram.get("fits"):
        lines.append(f"fits: yes, all {total} layers")
    elif placed:
        lines.append(f"fits: partly, {placed} of {total} layers offloaded")
    else:
        lines.append("fits: no")
    if vram.get("overhead"):
        lines.append(f"(keeping {_gib(vram['overhead'])} free per GPU: CORRAL_GPU_OVERHEAD)")
    return lines


def _draft_rows(report: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    draft = report.get("draft")
    if not draft:
        return []
    return [("draft", [f"{draft.get('model')}: {_gib(draft.get('total'))} more, in RAM"])]


def format_fit(report: Mapping[str, Any]) -> str:
    est, ram = report.get("estimate") or {}, report.get("ram") or {}
    slots = int(report.get("num_parallel") or 1)
    rows: list[tuple[str, list[str]]] = [
        ("model", [f"{report.get('model')} ({report.get('source')})"]),
        ("context", [f"{report.get('num_ctx')} tokens x {slots} slot{'s' if slots > 1 else ''}"]),
        ("weights", [_gib(est.get("weights"))]),
        ("KV cache", [_gib(est.get("kv_cache"))]),
        ("compute", [_gib(est.get("compute"))]),
        ("total", [_gib(est.get("total"))]),
        *_draft_rows(report),
        ("VRAM", _vram_lines(report)),
        (
            "RAM",
            [
                f"needs {_gib(ram.get('needed'))}, {_gib(ram.get('available'))} available "
                f"of {_gib(ram.get('total'))}: fits: {_yes(ram.get('fits'))}"
            ],
        ),
        ("verdict", [str(report.get("verdict"))]),
    ]
    lines = []
    for title, body in rows:
        for i, line in enumerate(body):
            lines.append(f"{title if i == 0 else '':<10}{line}")
    return "\n".join(lines)


def fit(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.client_factory().fit(
        args.model,
        num_ctx=args.ctx,
        num_parallel=args.parallel,
        num_gpu=args.gpu_layers,
        insecure=args.insecure or None,
    )
    print(json.dumps(report, indent=2) if args.json else format_fit(report))
    return 0 if report.get("fits") else 1
