"""``corral info``: the server's machine (CPU, RAM, GPUs), engine, store and settings.

It asks the running server (``GET /api/info``): the machine that will run the models. With
no server running it describes this machine with the settings of this environment instead,
and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from corral.client import ServerUnreachable

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["format_info", "info", "local_info"]

GIB = 1024**3


def _gib(value: Any) -> str:
    return "?" if value is None else f"{int(value) / GIB:.1f} GiB"


def local_info() -> dict[str, Any]:
    """What the server would report, computed here (no server running)."""
    from corral.config import Settings
    from corral.core.sysinfo import machine_info
    from corral.hardware import Hardware

    return machine_info(Settings(), Hardware())


def _gpu_lines(gpus: list[Mapping[str, Any]]) -> list[str]:
    if not gpus:
        return ["none found"]
    return [
        f"{g.get('vendor', '')} {g.get('index')}: {g.get('name')}, {_gib(g.get('free'))} free "
        f"of {_gib(g.get('total'))}, driver {g.get('driver') or '?'} ({g.get('source')})"
        for g in gpus
    ]


def _engine_lines(engine: Mapping[str, Any]) -> list[str]:
    if not engine.get("path"):
        return [f"not found: {engine.get('error', '')}"]
    devices = engine.get("devices") or []
    shown = [f"{d['id']} {d['name']} ({_gib(d['total'])}, {_gib(d['free'])} free)" for d in devices]
    fallback = engine.get("fallback")
    return [
        str(engine["path"]),
        f"version {engine.get('version')}",
        f"backends: {', '.join(engine.get('backends') or []) or '?'}",
        f"devices: {'; '.join(shown) if shown else 'none (runs on the CPU)'}",
        f"CPU features in use: {' '.join(engine.get('cpu_features') or []) or '?'}",
        (
            f"fallback in force: {' '.join(fallback['flags'])} ({fallback['reason']})"
            if fallback
            else "fallback in force: none"
        ),
    ]


def format_info(data: Mapping[str, Any]) -> str:
    hw = data.get("hardware") or {}
    cpu, ram = hw.get("cpu") or {}, hw.get("memory") or {}
    store = data.get("store") or {}
    sections: list[tuple[str, list[str]]] = [
        (
            "CPU",
            [
                f"{cpu.get('model')}, {cpu.get('cores')} cores, {cpu.get('threads')} threads "
                f"({cpu.get('usable')} usable), {cpu.get('architecture') or '?'}",
                f"flags: {' '.join(cpu.get('flags') or []) or 'none of note'}",
            ],
        ),
        ("RAM", [f"{_gib(ram.get('total'))} total, {_gib(ram.get('available'))} available"]),
        ("GPUs", _gpu_lines(hw.get("gpus") or [])),
        ("Engine", _engine_lines(data.get("engine") or {})),
        (
            "Store",
            [f"{store.get('path')}, {_gib(store.get('free'))} free of {_gib(store.get('total'))}"],
        ),
        (
            "Settings",
            [f"CORRAL_{k.upper()}={_setting(v)}" for k, v in (data.get("settings") or {}).items()],
        ),
    ]
    lines = [f"corral {data.get('version', '?')}"]
    for title, body in sections:
        for i, line in enumerate(body):
            lines.append(f"{title if i == 0 else '':<10}{line}")
    return "\n".join(lines)


def _setting(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def info(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client_factory()
    try:
        data = client.info()
        where = f"server at {client.base_url}"
    except ServerUnreachable:
        data = local_info()
        where = "no server running: this machine, with this environment's settings"
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_info(data))
    print(f"({where})", file=sys.stderr)
    return 0
