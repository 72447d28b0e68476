"""API keys from ``CORRAL_API_KEYS``: a comma-separated list, or a file of sha256 hashes.

Inline form: ``CORRAL_API_KEYS="key-one,ro:key-two"``. A ``ro:`` prefix makes a key read-only.

File form: ``CORRAL_API_KEYS=/etc/corral/keys`` (any value starting with ``/``, ``~`` or ``.``,
or naming an existing file). One key per line as the lowercase hex sha256 of the key, optionally
written ``sha256:<hex>`` and optionally prefixed ``ro:``; blank lines and ``#`` comments are
ignored. ``printf %s "$KEY" | sha256sum`` prints the hash. A file that is missing or holds a
malformed line stops the server at start-up: a typo must never leave the API open.

Only hashes are kept in memory; a presented key is hashed and compared with every stored hash
by :func:`hmac.compare_digest`, so timing says nothing about which key (or how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

__all__ = ["KeyConfigError", "KeyRing", "Scope", "hash_key", "load_keys"]

_HEX = re.compile(r"^[0-9a-f]{64}$")
_READ_ONLY = "ro:"


class KeyConfigError(ValueError):
    """``CORRAL_API_KEYS`` names a missing file or holds a malformed entry."""


class Scope(Enum):
    FULL = "full"
    READ_ONLY = "read-only"


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeyRing:
    """The configured keys as (sha256 digest, scope) pairs."""

    entries: tuple[tuple[bytes, Scope], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def scope_of(self, key: str) -> Scope | None:
        """The scope of a presented key, or None; always compares against every entry."""
        digest = hash_key(key)
        found: Scope | None = None
        for stored, scope in self.entries:
            if hmac.compare_digest(digest, stored) and found is None:
                found = scope
        return found


def _split_scope(entry: str) -> tuple[str, Scope]:
    if entry.startswith(_READ_ONLY):
        return entry[len(_READ_ONLY) :].strip(), Scope.READ_ONLY
    return entry, Scope.FULL


def _is_path(value: str) -> bool:
    return value.startswith(("/", "~", ".")) or Path(value).is_file()


def _read_file(path: Path) -> KeyRing:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyConfigError(f"cannot read API key file {path}: {exc.strerror}") from exc
    except ValueError as exc:  # a NUL byte in the path: no file can have that name
        raise KeyConfigError(f"cannot read API key file {str(path)!r}: {exc}") from exc
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        value, scope = _split_scope(line)
        value = value.removeprefix("sha256:").lower()
        if not _HEX.match(value):
            raise KeyConfigError(
                f"{path}:{number}: expected a sha256 hex digest (64 hex digits), "
                "optionally prefixed ro: or sha256:"
            )
        entries.append((bytes.fromhex(value), scope))
    if not entries:
        raise KeyConfigError(f"API key file {path} holds no keys")
    return KeyRing(tuple(entries))


def load_keys(value: str | None) -> KeyRing:
    """The key ring for ``CORRAL_API_KEYS``; empty (auth off) when unset or blank."""
    value = (value or "").strip()
    if not value:
        return KeyRing()
    if _is_path(value):
        return _read_file(Path(value).expanduser())
    entries = []
    for item in value.split(","):
        key, scope = _split_scope(item.strip())
        if key:
            entries.append((hash_key(key), scope))
    if not entries:
        raise KeyConfigError("CORRAL_API_KEYS is set but names no key")
    return KeyRing(tuple(entries))
