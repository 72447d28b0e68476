"""``corral create NAME [-f Modelfile] [-q QUANT]``: build a model, like ``ollama create``.

The Modelfile is read and parsed here (by :mod:`corral.modelfile`, imported only by this
command) and sent as Ollama's current ``/api/create`` request: ``{model, from | files,
adapters, template, license, system, parameters, messages, quantize}``. A ``FROM`` naming a
local GGUF file (or a directory holding one; relative to the Modelfile's directory, ``~``
expanded), and each ``ADAPTER``, is uploaded first: its sha256, ``HEAD
/api/blobs/sha256:<hex>``, and when the server lacks it a streamed ``POST`` of the file. Any
other ``FROM`` is a model name, sent as ``from``.

Progress and the server's status lines go to stderr, as ``ollama create``'s do.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from corral.cli.main import CommandError

if TYPE_CHECKING:
    from corral.cli.main import Context
    from corral.client import Client
    from corral.modelfile import FromSource, Modelfile

__all__ = ["CreateRequest", "Progress", "create", "translate", "upload"]

Resolver = Callable[[str, Path], "FromSource"]  # corral.modelfile.resolve_from

CHUNK = 1 << 20


@dataclass
class CreateRequest:
    """An ``/api/create`` body before its uploads: ``files`` / ``adapters`` map the names
    the server will see to local paths; they become ``{name: "sha256:<hex>"}``."""

    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    adapters: dict[str, Path] = field(default_factory=dict)


def _add(files: dict[str, Path], path: Path) -> None:
    if files.get(path.name, path) != path:
        raise CommandError(f"two files named {path.name}: {files[path.name]} and {path}")
    files[path.name] = path


def translate(modelfile: Modelfile, base_dir: Path, resolve_from: Resolver) -> CreateRequest:
    """The request for a parsed :class:`corral.modelfile.Modelfile`, built as Ollama's
    ``Modelfile.CreateRequest`` builds it.

    Each FROM goes through ``resolve_from`` (:func:`corral.modelfile.resolve_from`): a local
    GGUF (a file, or a directory holding one; relative to ``base_dir``, ``~`` expanded) is
    to be uploaded and named in ``files``; anything else is a model name, sent as ``from``.
    An ADAPTER must be a local file. The other fields are the Modelfile's ``create_fields``.
    """
    request = CreateRequest(fields=modelfile.create_fields())
    for value in modelfile.from_:
        source = resolve_from(value, base_dir)
        if source.kind == "file" and source.path is not None:
            _add(request.files, source.path)
        else:
            request.fields["from"] = source.name
    for value in modelfile.adapters:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise CommandError(f"ADAPTER {value}: no such file ({path})")
        _add(request.adapters, path)
    return request


class Progress:
    """Lines on ``out`` (stderr): each new status on a line of its own; a percentage is
    rewritten in place on a terminal, and elsewhere printed once, at 100%."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.tty = out, out.isatty()
        self.line, self.open = "", False

    def status(self, text: str) -> None:
        if text and text != self.line:
            self.close()
            self._write(text + "\n", text)

    def percent(self, label: str, done: int, total: int) -> None:
        line = f"{label} {100 if total <= 0 else min(100, done * 100 // total)}%"
        if line == self.line:
            return
        if self.tty:
            self._write(f"\r{line}\x1b[K", line)
            self.open = True
        elif line.endswith(" 100%"):
            self._write(line + "\n", line)

    def update(self, chunk: Mapping[str, Any]) -> None:
        """One line of the ``/api/create`` stream: a status, or progress of a layer."""
        status, total = str(chunk.get("status") or ""), chunk.get("total")
        if chunk.get("digest") and isinstance(total, int) and total > 0:
            label = status or f"pulling {str(chunk['digest']).removeprefix('sha256:')[:12]}"
            self.percent(label, int(chunk.get("completed") or 0), total)
        else:
            self.status(status)

    def close(self) -> None:
        if self.open:
            self.out.write("\n")
            self.open = False

    def _write(self, text: str, line: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.line = line


def _read(path: Path, size: int, progress: Progress, label: str) -> Iterator[bytes]:
    with path.open("rb") as f:
        done = 0
        while data := f.read(CHUNK):
            done += len(data)
            progress.percent(label, done, size)
            yield data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while data := f.read(CHUNK):
            digest.update(data)
    return "sha256:" + digest.hexdigest()


def upload(client: Client, files: Mapping[str, Path], progress: Progress) -> dict[str, str]:
    """Send the blobs the server lacks; return ``{name: digest}`` for the request."""
    digests = {}
    for name, path in files.items():
        digest = _sha256(path)
        if not client.blob_exists(digest):
            size, label = path.stat().st_size, f"copying file {digest}"
            client.create_blob(digest, _read(path, size, progress, label), size)
            progress.percent(label, size, size)
        digests[name] = digest
    return digests


def _os_error(exc: OSError) -> str:
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)


def read_modelfile(name: str | None) -> tuple[Path, str | None]:
    """The Modelfile's path and text; no -f and no ./Modelfile gives ``None``: like Ollama,
    the model is then this directory's (``FROM .``)."""
    path = Path(name or "Modelfile").expanduser()
    if not path.exists():
        if name is None:
            return Path.cwd() / "Modelfile", None
        raise CommandError(f"specified Modelfile wasn't found: {name}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(_os_error(exc)) from exc
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        return path.absolute(), data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not a text file ({exc.reason})") from exc


def prepare(name: str | None) -> CreateRequest:
    """Read, parse and translate the Modelfile (:mod:`corral.modelfile` does the parsing);
    its mistakes become ``Modelfile: line N: ...`` errors. Warnings go to stderr."""
    from corral.modelfile import ModelfileError, parse_modelfile, resolve_from

    path, text = read_modelfile(name)
    try:
        parsed = parse_modelfile("FROM .\n" if text is None else text)
        for warning in parsed.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return translate(parsed, path.parent, resolve_from)
    except ModelfileError as exc:
        if text is None:
            raise CommandError(
                f"no Modelfile in {path.parent} (name one with -f), and no model here: {exc}"
            ) from exc
        raise CommandError(f"{path.name}: {exc}") from exc


def create(args: argparse.Namespace, ctx: Context) -> int:
    request = prepare(args.file)
    body = dict(request.fields)
    client = ctx.client_factory()
    progress = Progress(sys.stderr)
    try:
        progress.status("gathering model components")
        if request.files:
            body["files"] = upload(client, request.files, progress)
        if request.adapters:
            body["adapters"] = upload(client, request.adapters, progress)
        if args.quantize:
            body["quantize"] = args.quantize
        for chunk in client.create(args.name, **body):
            progress.update(chunk)
    except OSError as exc:  # a file went away or became unreadable while uploading
        raise CommandError(_os_error(exc)) from exc
    finally:
        progress.close()
    return 0
