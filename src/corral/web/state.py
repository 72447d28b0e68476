"""The web UI's state, built once by the app factory, and how a browser session is
recognised (by the UI's own routes and by the API-key middleware on /api and /v1)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import cookie_parser
from starlette.types import Scope

from corral.auth.keys import Scope as KeyScope
from corral.config import Settings
from corral.web.accounts import Accounts, LoginLimiter, Session, User
from corral.web.apikeys import WebKeys
from corral.web.chats import Chats
from corral.web.db import Database

__all__ = ["CSRF_HEADER", "LOCAL_USER", "SESSION_COOKIE", "WebUI"]

SESSION_COOKIE = "corral_session"
CSRF_HEADER = "x-csrf-token"
LOCAL_USER = "local"  # the one account of single-user mode (CORRAL_WEBUI_AUTH=false)
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
DIST = Path(__file__).resolve().parent / "frontend" / "dist"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


@dataclass
class WebUI:
    db: Database
    accounts: Accounts
    chats: Chats
    keys: WebKeys
    auth: bool = True
    env_keys: bool = False  # CORRAL_API_KEYS is set
    # per port: cookies ignore ports, and two servers on one host must not sign each other out
    cookie: str = SESSION_COOKIE
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    dist: Path = DIST

    @classmethod
    def create(cls, settings: Settings) -> WebUI:
        db = Database(settings.home.expanduser() / "corral.db")
        return cls(
            db=db,
            accounts=Accounts(db),
            chats=Chats(db),
            keys=WebKeys(db),
            auth=settings.webui_auth,
            env_keys=settings.api_keys is not None,
            cookie=f"{SESSION_COOKIE}_{settings.address.port}",
        )

    def may_sign_in_locally(self, client: str) -> bool:
        """Single-user mode signs a page in without a password: anyone's, while the API is
        open anyway; only a page on this machine's loopback once API keys guard the API (a
        session passes the key check)."""
        if not (self.env_keys or self.keys):
            return True
        try:
            return ipaddress.ip_address(client).is_loopback
        except ValueError:
            return False

    def local_user(self) -> User:
        """Single-user mode's account: an admin with an unusable password, made once."""
        for user in self.accounts.list():
            if user.username == LOCAL_USER:
                return user
        return self.accounts.create(LOCAL_USER, secrets.token_urlsafe(32), "admin", "active")

    def session_of(self, scope: Scope) -> Session | None:
        cookies = cookie_parser(_header(scope, b"cookie") or "")
        return self.accounts.session(cookies.get(self.cookie))

    def browser_scope(self, scope: Scope) -> KeyScope | None:
        """What a request may do on /api and /v1 on the strength of its session cookie alone:
        an admin's session counts as a full key, a user's as a read-only one. A state-changing
        request also needs the session's CSRF token in ``X-CSRF-Token``."""
        session = self.session_of(scope)
        if session is None:
            return None
        if scope.get("method", "GET") not in _SAFE_METHODS and not session.csrf_ok(
            _header(scope, CSRF_HEADER.encode())
        ):
            return None
        return KeyScope.FULL if session.user.is_admin else KeyScope.READ_ONLY

    def close(self) -> None:
        self.db.close()
