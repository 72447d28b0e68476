"""Users, sessions, sign-up settings and the login rate limit.

Passwords are hashed with argon2id (argon2-cffi's defaults: memory-hard, salted). A session is
a random token handed to the browser in an HttpOnly cookie; the database keeps only its sha256,
so a copy of ``corral.db`` opens no session. Each session has its own CSRF token, which the
page reads from ``/ui/api/me`` and sends back in ``X-CSRF-Token`` on every state-changing call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from corral.errors import BadRequest, CorralError
from corral.web.db import Database

__all__ = [
    "Accounts",
    "Conflict",
    "LoginLimiter",
    "NotFound",
    "Session",
    "TooManyAttempts",
    "User",
]

Role = Literal["admin", "user"]
Status = Literal["active", "pending", "disabled"]
SESSION_SECONDS = 30 * 24 * 3600
MIN_PASSWORD = 8
_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


class NotFound(CorralError):
    status_code = 404


class Conflict(CorralError):
    status_code = 409


class TooManyAttempts(CorralError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    status: Status
    created_at: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "status": self.status,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    token_hash: bytes

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["username"], row["role"], row["status"], row["created_at"])


def check_username(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64 or not set(name.lower()) <= _USERNAME_CHARS:
        raise BadRequest("username: 1-64 letters, digits, or . _ - @")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise BadRequest("password: at most 1024 characters")
    return password


class Accounts:
    """Users and their sessions in the database."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self.hasher = PasswordHasher()
        self._dummy_hash: str | None = None

    @property
    def _dummy(self) -> str:
        """A hash to verify against for unknown names (equal work), made on first use: every
        app factory call builds an Accounts, most never sign anyone in."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    # -- users --------------------------------------------------------------------------

    def count(self) -> int:
        row = self.db.one("SELECT count(*) AS n FROM users")
        return int(row["n"]) if row else 0

    def create(self, username: str, password: str, role: Role, status: Status) -> User:
        username = check_username(username)
        digest = self.hasher.hash(check_password(password))
        try:
            cursor = self.db.write(
                "INSERT INTO users (username, password_hash, role, status, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (username, digest, role, status, self.clock()),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f'user "{username}" already exists') from exc
        return self.get(int(cursor.lastrowid or 0))

    def create_first_admin(self, username: str, password: str) -> User:
        """The admin account of a fresh install; refused once any user exists."""
        username = check_username(username)
        digest = self.hasher.hash(check_password(password))
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                raise Conflict("the admin account already exists; sign in")
            cursor = conn.execute(
                "INSERT INTO users (username, password_hash, role, status, created_at) "
                "VALUES (?, ?, 'admin', 'active', ?)",
                (username, digest, self.clock()),
            )
        return self.get(int(cursor.lastrowid or 0))

    def get(self, user_id: int) -> User:
        row = self.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFound("user not found")
        return _user(row)

    def list(self) -> list[User]:
        return [_user(r) for r in self.db.query("SELECT * FROM users ORDER BY id")]

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches (whatever the status), else None."""
        row = self.db.one("SELECT * FROM users WHERE username = ?", (username.strip(),))
        digest = row["password_hash"] if row else self._dummy
        try:
            self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self.hasher.check_needs_rehash(digest):
            self.db.write(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (self.hasher.hash(password), row["id"]),
            )
        return _user(row)

    def _active_admins(self) -> int:
        row = self.db.one(
            "SELECT count(*) AS n FROM users WHERE role = 'admin' AND status = 'active'"
        )
        return int(row["n"]) if row else 0

    def update(
        self,
        user_id: int,
        *,
        role: Role | None = None,
        status: Status | None = None,
        password: str | None = None,
    ) -> User:
        user = self.get(user_id)
        loses_admin = user.is_admin and user.status == "active"
        loses_admin = loses_admin and (
            (role is not None and role != "admin") or (status is not None and status != "active")
        )
        if loses_admin and self._active_admins() <= 1:
            raise BadRequest("the last active admin cannot be demoted or disabled")
        if role is not None:
            self.db.write("UPDATE users SET role = ? WHERE id = ?", (role, user_id))
        if status is not None:
            self.db.write("UPDATE users SET status = ? WHERE id = ?", (status, user_id))
            if status != "active":
                self.end_sessions(user_id)
        if password is not None:
            digest = self.hasher.hash(check_password(password))
            self.db.write("UPDATE users SET password_hash = ? WHERE id = ?", (digest, user_id))
        return self.get(user_id)

    def delete(self, user_id: int) -> None:
        user = self.get(user_id)
        if user.is_admin and user.status == "active" and self._active_admins() <= 1:
            raise BadRequest("the last active admin cannot be deleted")
        self.db.write("DELETE FROM users WHERE id = ?", (user_id,))

    # -- sessions -------------------------------------------------------------------------

    def start_session(self, user: User) -> str:
        """A new session for ``user``; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        self.db.write(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (_token_hash(token), user.id, secrets.token_urlsafe(24), now, now + SESSION_SECONDS),
        )
        self.db.write("DELETE FROM sessions WHERE expires_at < ?", (now,))
        return token

    def session(self, token: str | None) -> Session | None:
        """The live session of an active user for a cookie's token, else None."""
        if not token:
            return None
        row = self.db.one(
            "SELECT s.token_hash, s.csrf, u.* FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND u.status = 'active'",
            (_token_hash(token), self.clock()),
        )
        return Session(_user(row), row["csrf"], row["token_hash"]) if row else None

    def end_session(self, token: str) -> None:
        self.db.write("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def end_sessions(self, user_id: int) -> None:
        self.db.write("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    # -- settings -------------------------------------------------------------------------

    def setting(self, key: str, default: bool = False) -> bool:
        row = self.db.one("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else row["value"] == "1"

    def set_setting(self, key: str, value: bool) -> None:
        self.db.write(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, "1" if value else "0"),
        )


@dataclass
class LoginLimiter:
    """Failed sign-ins in ``window`` seconds: at most ``limit`` per (client address, user name)
    pair and ``ip_limit`` per address over all names. There is no lock per name alone: anyone
    could then lock the admin out by guessing five times. A success clears the pair's count.
    Counts live in memory (a restart forgets)."""

    limit: int = 5
    ip_limit: int = 30
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= self.clock() - self.window:
            times.popleft()
        return times

    @staticmethod
    def _keys(address: str, username: str) -> tuple[str, str]:
        return f"ip:{address}", f"pair:{address}\n{username.strip().lower()}"

    def check(self, address: str, username: str) -> None:
        ip_key, pair_key = self._keys(address, username)
        for key, limit in ((ip_key, self.ip_limit), (pair_key, self.limit)):
            times = self._recent(key)
            if len(times) >= limit:
                wait = max(1, int(times[-limit] + self.window - self.clock()) + 1)
                raise TooManyAttempts(
                    f"too many failed sign-ins; try again in {wait} seconds", wait
                )

    def failed(self, address: str, username: str) -> None:
        if len(self._failures) > 10_000:  # forget names and addresses whose window has passed
            for key in list(self._failures):
                if not self._recent(key):
                    del self._failures[key]
        for key in self._keys(address, username):
            self._recent(key).append(self.clock())

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop(self._keys(address, username)[1], None)
