"""``corral worker``: llama.cpp's rpc-server in the foreground, its cache in CORRAL_HOME."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.cli.main import Context

__all__ = ["worker"]


def worker(args: argparse.Namespace, ctx: Context) -> int:
    from corral.config import Settings
    from corral.runner.discovery import find_engine_tool
    from corral.runner.rpc import RPC_SERVER, is_loopback, worker_argv

    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"Error: refusing to listen on {args.host}: the RPC protocol has no "
            "authentication, so anyone who reaches this port could use this machine. "
            "Pass --allow-remote on a trusted network (or use 127.0.0.1 and a tunnel).",
            file=sys.stderr,
        )
        return 2
    settings = Settings()
    binary = find_engine_tool(RPC_SERVER, settings.llama_server)
    if binary is None:
        print(
            f"Error: {RPC_SERVER} was not found beside llama-server or on PATH: the engine "
            "must be built with -DGGML_RPC=ON (make install does)",
            file=sys.stderr,
        )
        return 1
    cache = settings.home.expanduser() / "rpc-cache"
    cache.mkdir(parents=True, exist_ok=True)
    # rpc-server keeps received tensors under LLAMA_CACHE, so a reload does not resend them.
    env = {**os.environ, "LLAMA_CACHE": str(cache)}
    threads = args.threads or os.cpu_count() or 1
    argv = worker_argv(binary, args.host, args.port, threads, cache=not args.no_cache)
    print(f"corral worker on {args.host}:{args.port} ({threads} threads, cache {cache})")
    sys.stdout.flush()
    # exec, not a child: a signal to `corral worker` (Ctrl-C, a supervisor's kill) reaches the
    # server itself, and no orphan keeps the port.
    os.execve(argv[0], argv, env)
