"""Resumable, parallel, verified download of one blob.

The blob is fetched in ranged parts into ``blobs/sha256-<hex>-partial`` (Ollama's name for
it), with the parts' progress in ``sha256-<hex>-partial.json``. A part's progress is saved
only after its bytes were written, so after any interruption (Ctrl-C, ``kill -9``, a dropped
connection) the next download asks only for what is missing. Transient errors retry with
backoff; a stalled part hits the read timeout and is retried. The whole file is hashed before
it is renamed to ``sha256-<hex>``: a blob is visible only when verified.

Speed (docs/benchmarks.md, "Pull throughput"): writes run in worker threads so the event loop
keeps receiving while the kernel copies, and the sha256 follows the download: a
:class:`PrefixHasher` hashes the file's contiguous finished prefix in a thread while later
parts are still arriving, so only the tail is left to hash at the end (hashing 253 MB after
the fact took 0.17-0.24 s here, longer than curl's whole transfer over loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from corral.errors import (
    CorruptBlob,
    InsufficientDiskSpace,
    ManifestUnknown,
    RegistryAuthError,
    RegistryError,
)
from corral.observe import NULL_OBSERVER, Observer
from corral.store.atomic import fsync_dir, write_atomic
from corral.store.blobs import BlobStore

__all__ = ["BlobBody", "BlobClient", "DownloadOptions", "Part", "PartialBlob", "download_blob"]


class BlobBody(Protocol):
    """The part of a streamed response the downloader reads (an httpx.Response is one)."""

    @property
    def status_code(self) -> int: ...

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...


class BlobClient(Protocol):
    """Where blob bytes come from: an OCI registry, or a Hugging Face file."""

    def blob(self, digest: str, start: int, end: int) -> AbstractAsyncContextManager[BlobBody]: ...

    async def aclose(self) -> None: ...


_SAVE_EVERY = 0.5  # seconds between state saves while parts are running


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    part_size: int = 64 << 20
    max_parts: int = 16
    parallel: int = 4
    retries: int = 5  # failed attempts in a row (without progress) before a part gives up
    backoff: float = 0.5  # seconds, doubled per failed attempt
    read_timeout: float = 30.0
    # told of every byte received (pull metrics); not a setting, so not compared
    observer: Observer = field(default=NULL_OBSERVER, compare=False, repr=False)


@dataclass(slots=True)
class Part:
    start: int
    end: int  # inclusive
    done: int = 0  # bytes written from start

    @property
    def remaining(self) -> int:
        return self.end - self.start + 1 - self.done


class PartialBlob:
    """The partial file of one blob and its saved per-part state."""

    def __init__(self, blobs: BlobStore, digest: str, size: int) -> None:
        final = blobs.path(digest)
        self.digest = digest
        self.size = size
        self.path = final.with_name(final.name + "-partial")
        self.state_path = final.with_name(final.name + "-partial.json")
        self.parts: list[Part] = []

    def load(self, options: DownloadOptions) -> None:
        """Resume the saved parts when they describe this blob, else plan fresh ones."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            state = json.loads(self.state_path.read_bytes())
            if state["size"] == self.size and self.path.is_file():
                self.parts = [Part(int(s), int(e), int(d)) for s, e, d in state["parts"]]
                if sum(p.end - p.start + 1 for p in self.parts) == self.size:
                    return
        count = max(1, min(options.max_parts, -(-self.size // options.part_size)))
        step = -(-self.size // count) if self.size else 0
        self.parts = [
            Part(start, min(start + step, self.size) - 1)
            for start in range(0, self.size, step or 1)
        ]
        self.path.unlink(missing_ok=True)

    @property
    def completed(self) -> int:
        return sum(p.done for p in self.parts)

    def save(self) -> None:
        state = {"size": self.size, "parts": [[p.start, p.end, p.done] for p in self.parts]}
        data = json.dumps(state).encode()
        try:
            write_atomic(self.state_path, data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self.state_path.is_file():
                raise
            # A full disk has no room for a new file, but the old one's block can be
            # rewritten: keep what was downloaded resumable. (A torn write can only lose
            # the resume; the bytes are verified by their sha256 anyway.)
            fd = os.open(self.state_path, os.O_WRONLY)
            try:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
            finally:
                os.close(fd)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """pwrite may write less than asked (a disk filling up): only whole chunks count."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _disk_full(exc: BaseException, partial: PartialBlob) -> BaseException:
    """ENOSPC / EDQUOT as the typed error that says what happened and what is kept."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientDiskSpace(
            f"the disk filled up while downloading {partial.digest[:19]} into "
            f"{partial.path.parent} ({partial.completed} of {partial.size} bytes written); "
            "nothing was added to the store: free some space and pull again to resume"
        )
    return exc


class PrefixHasher:
    """sha256 of the partial file, fed with its contiguous finished prefix as it grows.

    Parts are planned in order and each fills from its start, so the prefix that is already
    on disk ends in the first part that is not complete. :meth:`follow` hashes up to there
    whenever :meth:`wake` says more arrived; hashlib drops the GIL for large updates, so the
    thread hashes while the event loop downloads.
    """

    _CHUNK = 8 << 20

    def __init__(self, partial: PartialBlob, fd: int) -> None:
        self.partial = partial
        self.fd = fd
        self.hashed = 0
        self._hash = hashlib.sha256()
        self._more = asyncio.Event()
        self._stopped = False

    def frontier(self) -> int:
        for part in self.partial.parts:
            if part.remaining:
                return part.start + part.done
        return self.partial.size

    def wake(self) -> None:
        self._more.set()

    def stop(self) -> None:
        """Make :meth:`follow` return once its current chunk is hashed."""
        self._stopped = True
        self._more.set()

    def _hash_until(self, end: int) -> None:
        while self.hashed < end:
            chunk = os.pread(self.fd, min(self._CHUNK, end - self.hashed), self.hashed)
            if not chunk:
                raise OSError(f"{self.partial.path} is shorter than its finished parts")
            self._hash.update(chunk)
            self.hashed += len(chunk)

    async def follow(self) -> None:
        """Hash as the prefix grows, until :meth:`stop` (then :meth:`finish`)."""
        while True:
            await self._more.wait()
            self._more.clear()
            if self._stopped:
                return
            end = self.frontier()
            if end - self.hashed >= self._CHUNK or end == self.partial.size:
                await asyncio.to_thread(self._hash_until, end)

    async def finish(self) -> str:
        """The digest of the whole file (all parts must be complete)."""
        await asyncio.to_thread(self._hash_until, self.partial.size)
        return f"sha256:{self._hash.hexdigest()}"


async def _fetch_part(
    client: BlobClient,
    partial: PartialBlob,
    part: Part,
    fd: int,
    options: DownloadOptions,
    progress: Callable[[int], None],
    saver: Callable[[], None],
) -> None:
    failures = 0
    while part.remaining > 0:
        before = part.done
        try:
            offset = part.start + part.done
            async with client.blob(partial.digest, offset, part.end) as response:
                skip = offset if response.status_code == 200 else 0  # Range ignored
                async for chunk in response.aiter_bytes(1 << 20):
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    chunk = chunk[: part.remaining]
                    if chunk:
                        await asyncio.to_thread(_write_all, fd, chunk, part.start + part.done)
                        part.done += len(chunk)
                        progress(len(chunk))
                        options.observer.pull_bytes(len(chunk))
                        saver()
                    if part.remaining == 0:
                        break
        except (RegistryAuthError, ManifestUnknown):
            raise
        except (httpx.HTTPError, RegistryError) as exc:
            failures = 0 if part.done > before else failures + 1
            if failures > options.retries:
                raise RegistryError(
                    f"downloading {partial.digest[:19]} failed after {failures} tries: {exc}"
                ) from exc
            await asyncio.sleep(options.backoff * 2 ** (failures - 1) if failures else 0)


async def download_blob(
    client: BlobClient,
    blobs: BlobStore,
    digest: str,
    size: int,
    progress: Callable[[int], None],
    options: DownloadOptions | None = None,
) -> None:
    """Download ``digest`` into the store; ``progress`` gets byte counts (the resumed part
    first). Raises :class:`CorruptBlob` (and drops the partial) when the hash differs."""
    options = options or DownloadOptions()
    if blobs.exists(digest):
        progress(size)
        return
    blobs.root.mkdir(parents=True, exist_ok=True)
    partial = PartialBlob(blobs, digest, size)
    partial.load(options)
    progress(partial.completed)
    last_save = time.monotonic()

    def saver() -> None:
        nonlocal last_save
        if time.monotonic() - last_save >= _SAVE_EVERY:
            last_save = time.monotonic()
            partial.save()

    fd = os.open(partial.path, os.O_RDWR | os.O_CREAT, 0o644)
    hasher = PrefixHasher(partial, fd)

    def advanced(count: int) -> None:
        progress(count)
        hasher.wake()

    try:
        partial.save()
        limit = asyncio.Semaphore(options.parallel)

        async def run(part: Part) -> None:
            async with limit:
                await _fetch_part(client, partial, part, fd, options, advanced, saver)

        following = asyncio.create_task(hasher.follow())
        try:
            async with asyncio.TaskGroup() as group:
                for part in partial.parts:
                    if part.remaining:
                        group.create_task(run(part))
        finally:
            hasher.stop()  # waits for a running chunk: the file closes only after it
            await asyncio.shield(following)
        # Both before the rename; they use different resources (CPU, disk): side by side.
        got, _ = await asyncio.gather(hasher.finish(), asyncio.to_thread(os.fsync, fd))
    except BaseExceptionGroup as group_error:
        # One part's failure cancels its siblings: report the first real reason.
        raise _disk_full(group_error.exceptions[0], partial) from None
    except OSError as exc:
        raise _disk_full(exc, partial) from None
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            partial.save()
    if got != digest:
        partial.discard()
        raise CorruptBlob(
            f"digest mismatch, file must be downloaded again: want {digest}, got {got}"
        )
    os.replace(partial.path, blobs.path(digest))
    fsync_dir(blobs.root)
    partial.state_path.unlink(missing_ok=True)
