"""Registry credentials from ``corral login``: ``$CORRAL_HOME/credentials.json``, mode 0600.

The file maps a registry host (``host[:port]``) to ``{"username": ..., "password": ...}``.
It is re-read on every use, so a login takes effect without restarting the server.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from corral.errors import StoreError

__all__ = ["Credential", "CredentialStore"]


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    password: str


class CredentialStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read credentials from {self.path}: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Created 0600 from the start: the secret is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get(self, host: str) -> Credential | None:
        entry = self._load().get(host.lower())
        if not isinstance(entry, dict) or "username" not in entry:
            return None
        return Credential(str(entry["username"]), str(entry.get("password", "")))

    def set(self, host: str, credential: Credential) -> None:
        data = self._load()
        data[host.lower()] = {"username": credential.username, "password": credential.password}
        self._save(data)

    def remove(self, host: str) -> bool:
        data = self._load()
        if data.pop(host.lower(), None) is None:
            return False
        self._save(data)
        return True
