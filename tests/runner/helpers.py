"""Helpers for the runner tests: fake engine binaries and endpoints, process checks."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import stat
import struct
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def write_script(path: Path, body: str) -> Path:
    """An executable Python script at ``path`` (a fake llama-server)."""
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``within`` seconds pass; its last value."""
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return predicate()
        await asyncio.sleep(0.02)


# -- a fake llama-server HTTP endpoint -------------------------------------------------------


@dataclass
class Request:
    """What the fake engine received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    content: bytes


@dataclass
class Reply:
    """A canned answer: ``body`` with a Content-Length, or ``stream`` sent chunked.

    The server calls ``stream.aclose()`` when the client hangs up before the end of a
    chunked answer, so a test can tell that the engine would stop generating.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: ByteStream | None = None
    hang_up: bool = False  # drop the connection (FIN) once the reply is out


class ByteStream(Protocol):
    """The chunks of an answer (an async generator will do)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Hangup(Exception):
    """Raised by a responder or a reply's stream: the server drops the connection.

    With ``reset`` the peer gets a TCP RST; without, a FIN (as if the engine exited).
    """

    def __init__(self, reset: bool = False) -> None:
        super().__init__("reset" if reset else "hang up")
        self.reset = reset


Responder = Callable[[Request], "Reply | Awaitable[Reply]"]


class FakeEngine:
    """HTTP/1.1 with keep-alive on 127.0.0.1: each request is answered by ``respond``."""

    def __init__(self) -> None:
        self.respond: Responder = lambda _: Reply(404, b"no responder")
        self.requests: list[Request] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> FakeEngine:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while (request := await _read_request(reader)) is not None:
                self.requests.append(request)
                reply = self.respond(request)
                if inspect.isawaitable(reply):
                    reply = await reply
                if not await _write_reply(reply, reader, writer):
                    return
        except Hangup as hangup:
            _hang_up(writer, hangup.reset)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head.strip():
        return None
    start, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = start.split(" ", 2)
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    content = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, target, headers, content)


async def _write_reply(
    reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Send ``reply``; False when the connection is finished with."""
    headers = dict(reply.headers)
    if reply.stream is None:
        headers.setdefault("Content-Length", str(len(reply.body)))
    else:
        headers["Transfer-Encoding"] = "chunked"
    head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
    await writer.drain()
    if reply.stream is None:
        return not reply.hang_up
    pump = asyncio.ensure_future(_pump(reply.stream, writer))
    gone = asyncio.ensure_future(reader.read(1))  # b"" once the client hangs up
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not gone.done():
            error = pump.exception()
            if error is None:
                return True  # the whole answer went out: the connection stays open
            if isinstance(error, Hangup):
                _hang_up(writer, error.reset)
                if error.reset:
                    return False
                try:  # half closed: the client should close its side now
                    await asyncio.wait_for(gone, 5)
                except TimeoutError:
                    return False
            elif not isinstance(error, ConnectionError):
                raise error
        await reply.stream.aclose()  # the client hung up
        return False
    finally:
        pump.cancel()
        gone.cancel()
        await asyncio.wait({pump, gone})  # the reader is free for the next request


async def _pump(stream: ByteStream, writer: asyncio.StreamWriter) -> None:
    async for chunk in stream:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _hang_up(writer: asyncio.StreamWriter, reset: bool) -> None:
    if reset:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    elif writer.can_write_eof():
        writer.write_eof()
