"""Running a plan: skip what is present, pull or create the rest, retry network failures with
backoff, preload, and report every step (readiness JSON, logs).

Idempotence: a pulled model whose manifest names only blobs that are present with the right
size is skipped (blobs are verified against their digest before they become visible, so a
present blob is a verified one); a created model is skipped when the store still holds the
manifest provisioning wrote for the same definition (``corral-provisioned.json`` beside the
store records both). Neither check reads a model's bytes: a re-provision takes milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from corral.errors import (
    BadRequest,
    CorruptBlob,
    InsufficientDiskSpace,
    ManifestUnknown,
    RegistryAuthError,
    RegistryError,
)
from corral.provision.spec import ModelEntry, ProvisionPlan
from corral.store.atomic import write_atomic

__all__ = ["Backend", "EntryStatus", "Provisioner", "is_transient"]

log = logging.getLogger("corral.provision")

State = Literal["pending", "checking", "pulling", "creating", "loading", "done", "failed"]


class Backend(Protocol):
    """What provisioning needs from the store, the registry and (when serving) the engines."""

    can_preload: bool

    def manifest_digest(self, name: str) -> str | None:
        """The stored manifest's digest when every blob it names is present, else None."""

    def pull(self, name: str, *, insecure: bool) -> AsyncIterator[dict[str, Any]]:
        """Ollama's pull status objects (``status``, ``total``, ``completed``)."""

    def create(self, name: str, modelfile: str) -> AsyncIterator[dict[str, Any]]:
        """Ollama's create status objects."""

    async def preload(self, name: str) -> None:
        """Load the model with keep_alive forever."""


def is_transient(exc: BaseException) -> bool:
    """Worth another try: the network or the registry failed, not the request."""
    if isinstance(exc, ManifestUnknown | RegistryAuthError | InsufficientDiskSpace | BadRequest):
        return False
    return isinstance(
        exc, RegistryError | CorruptBlob | httpx.TransportError | TimeoutError | ConnectionError
    )


@dataclass
class EntryStatus:
    name: str
    required: bool
    state: State = "pending"
    action: str = ""  # present, pulled, created, ... once done
    completed: int = 0
    total: int = 0
    attempt: int = 0
    error: str | None = None
    seconds: float = 0.0
    preload: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "state": self.state}
        if not self.required:
            out["optional"] = True
        if self.action:
            out["action"] = self.action
        if self.total:
            out["completed"], out["total"] = self.completed, self.total
            out["percent"] = round(100 * self.completed / self.total, 1)
        if self.attempt > 1:
            out["attempt"] = self.attempt
        if self.error:
            out["error"] = self.error
        return out


class _Progress:
    """Sums a pull's per-layer progress lines into one completed/total pair."""

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}

    def feed(self, line: dict[str, Any], status: EntryStatus) -> None:
        digest, total = line.get("digest"), line.get("total")
        if digest and total:
            self.layers[str(digest)] = (int(line.get("completed") or 0), int(total))
            status.completed = sum(c for c, _ in self.layers.values())
            status.total = sum(t for _, t in self.layers.values())


Listener = Callable[["Provisioner"], None]


class Provisioner:
    """Runs a :class:`ProvisionPlan` once against a :class:`Backend`."""

    def __init__(
        self,
        plan: ProvisionPlan,
        backend: Backend,
        *,
        state_file: Path,
        listener: Listener | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.plan = plan
        self.backend = backend
        self.state_file = state_file
        self.listener = listener
        self.sleep = sleep
        self.entries = plan.ordered()
        self.status = {
            e.name: EntryStatus(e.name, e.required, preload=e.preload) for e in self.entries
        }
        self.finished = False
        self.seconds = 0.0

    # -- reporting ------------------------------------------------------------------------

    @property
    def required_done(self) -> bool:
        return all(s.state == "done" for s in self.status.values() if s.required)

    @property
    def failed(self) -> list[EntryStatus]:
        return [s for s in self.status.values() if s.state == "failed"]

    def report(self) -> dict[str, Any]:
        """What /health/ready shows while not ready: the model in progress and how far."""
        current = next(
            (s for s in self.status.values() if s.state not in ("pending", "done", "failed")),
            None,
        )
        out: dict[str, Any] = {}
        if current is not None:
            out["model"] = current.name
            out["action"] = current.state
            if current.total:
                out["completed"], out["total"] = current.completed, current.total
                out["percent"] = round(100 * current.completed / current.total, 1)
        out["remaining"] = sum(1 for s in self.status.values() if s.required and s.state != "done")
        failed = [s for s in self.failed if s.required]
        if failed:
            out["failed"] = [{"name": s.name, "error": s.error} for s in failed]
        out["models"] = [s.as_json() for s in self.status.values()]
        return out

    def reason(self) -> str:
        failed = [s for s in self.failed if s.required]
        if failed:
            first = failed[0]
            return f"provisioning failed: {first.name}: {first.error}"
        return "provisioning models"

    def notify(self) -> None:
        """Tell the listener (readiness) where things stand."""
        if self.listener is not None:
            self.listener(self)

    # -- running --------------------------------------------------------------------------

    async def run(self) -> bool:
        """Provision every entry; True when every required one is done."""
        started = time.perf_counter()
        records = self._read_state()
        self.notify()
        for entry in self.entries:
            await self._provision(entry, records)
            self.notify()
        self.seconds = time.perf_counter() - started
        self.finished = True
        counts: dict[str, int] = {}
        for s in self.status.values():
            key = s.action if s.state == "done" else s.state
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        log.info("provisioning finished in %.3f s: %s", self.seconds, summary)
        self.notify()
        return self.required_done

    async def _provision(self, entry: ModelEntry, records: dict[str, Any]) -> None:
        status = self.status[entry.name]
        started = time.perf_counter()
        status.state = "checking"
        while True:
            status.attempt += 1
            try:
                status.action = await self._obtain(entry, status, records)
                if entry.preload and self.backend.can_preload:
                    status.state = "loading"
                    self.notify()
                    await self.backend.preload(entry.name)
                    status.action += ", loaded"
                elif entry.preload:
                    status.action += ", preload skipped (no server)"
                status.state = "done"
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status.error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                if is_transient(exc) and status.attempt < self.plan.retry.attempts:
                    delay = self.plan.retry.delay(status.attempt)
                    log.warning(
                        "provisioning %s: try %d of %d failed (%s); retrying in %.1f s",
                        entry.name, status.attempt, self.plan.retry.attempts,
                        status.error, delay,
                    )  # fmt: skip
                    self.notify()
                    await self.sleep(delay)
                    continue
                status.state = "failed"
                log.error(
                    "provisioning %s (%s) failed%s: %s",
                    entry.name, entry.where,
                    f" after {status.attempt} tries" if status.attempt > 1 else "",
                    status.error,
                    exc_info=not isinstance(exc, BadRequest | RegistryError | OSError),
                )  # fmt: skip
                break
        status.seconds = time.perf_counter() - started
        if status.state == "done":
            status.error = None
            log.info("provisioned %s: %s (%.3f s)", entry.name, status.action, status.seconds)

    async def _obtain(self, entry: ModelEntry, status: EntryStatus, records: dict[str, Any]) -> str:
        present = await asyncio.to_thread(self.backend.manifest_digest, entry.name)
        if entry.kind == "pull":
            if present is not None and not entry.update:
                return "present"
            status.state = "pulling"
            self.notify()
            progress = _Progress()
            async for line in self.backend.pull(entry.name, insecure=entry.insecure):
                progress.feed(line, status)
                self.notify()
            after = await asyncio.to_thread(self.backend.manifest_digest, entry.name)
            return "up to date" if present is not None and after == present else "pulled"
        record = records.get(entry.name) or {}
        fingerprint = await asyncio.to_thread(entry.fingerprint)
        if (
            present is not None
            and record.get("fingerprint") == fingerprint
            and record.get("manifest") == present
        ):
            return "present"
        status.state = "creating"
        self.notify()
        assert entry.modelfile is not None
        async for _ in self.backend.create(entry.name, entry.modelfile):
            self.notify()
        digest = await asyncio.to_thread(self.backend.manifest_digest, entry.name)
        records[entry.name] = {"fingerprint": fingerprint, "manifest": digest}
        await asyncio.to_thread(self._write_state, records)
        return "created"

    # -- the record of created models -----------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        created = data.get("created") if isinstance(data, dict) else None
        return dict(created) if isinstance(created, dict) else {}

    def _write_state(self, records: dict[str, Any]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"created": records}, indent=2, sort_keys=True).encode()
        write_atomic(self.state_file, body)
