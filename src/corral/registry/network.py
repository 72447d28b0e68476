"""Transport failures in words a user can act on, instead of an exception's repr."""

from __future__ import annotations

import asyncio
import socket

from corral.errors import RegistryError

__all__ = ["unreachable"]


def _cause(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:  # httpx and aiohttp wrap the OS error; look through the chain
        if isinstance(seen, socket.gaierror):
            return "its name does not resolve (is the network up, is the name right?)"
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused (is the registry running on that port?)"
        if isinstance(seen, TimeoutError | asyncio.TimeoutError):
            return "it did not answer in time"
        if isinstance(seen, ConnectionResetError):
            return "it closed the connection"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip()
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "its name does not resolve (is the network up, is the name right?)"
    if "Connection refused" in text or "Connect call failed" in text:
        return "the connection was refused (is the registry running on that port?)"
    return text or type(exc).__name__


def unreachable(what: str, exc: BaseException) -> RegistryError:
    """``cannot reach registry.ollama.ai: its name does not resolve (...)``."""
    return RegistryError(f"cannot reach {what}: {_cause(exc)}")
