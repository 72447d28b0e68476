"""The web UI's state, built once by the app factory, and how a browser session is
recognised (by the UI's own routes and by the API-key middleware on /api and /v1)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import cookie_parser
from starlette.types import Scope

from corral.auth.keys import KeyConfigError, KeyRing, load_keys
from corral.auth.keys import Scope as KeyScope
from corral.config import Settings
from corral.errors import Forbidden
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
    env_ring: KeyRing = field(default_factory=KeyRing)  # its keys, to check a set-up's key
    # per port: cookies ignore ports, and two servers on one host must not sign each other out
    cookie: str = SESSION_COOKIE
    port: int = 11434  # the configured one, for messages that say where to open the page
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    dist: Path = DIST

    @classmethod
    def create(cls, settings: Settings) -> WebUI:
        db = Database(settings.home.expanduser() / "corral.db")
        secret = settings.api_keys.get_secret_value() if settings.api_keys else None
        try:
            ring = load_keys(secret)
        except KeyConfigError:  # install_security reports it
            ring = KeyRing()
        return cls(
            db=db,
            accounts=Accounts(db),
            chats=Chats(db),
            keys=WebKeys(db),
            auth=settings.webui_auth,
            env_keys=settings.api_keys is not None,
            env_ring=ring,
            cookie=f"{SESSION_COOKIE}_{settings.address.port}",
            port=settings.address.port,
        )

    @property
    def keys_configured(self) -> bool:
        """API keys guard /api and /v1 (CORRAL_API_KEYS or a key made in the UI)."""
        return self.env_keys or bool(self.keys)

    @staticmethod
    def is_loopback_client(client: str) -> bool:
        """The connection came from this machine (127.0.0.0/8 or ::1). In-process test
        transports name no address ("testclient") and count as remote."""
        try:
            return ipaddress.ip_address(client).is_loopback
        except ValueError:
            return False

    def may_sign_in_locally(self, client: str) -> bool:
        """Single-user mode signs a page in without a password: anyone's, while the API is
        open anyway; only a page on this machine's loopback once API keys guard the API (a
        session passes the key check)."""
        return not self.keys_configured or self.is_loopback_client(client)

    def may_set_up(self, client: str, bearer: str | None) -> bool:
        """Who may create the first admin. Without API keys: anyone (the first visitor, as in
        Open WebUI). With keys: an admin's session is as good as a full key, so only a client
        on this machine's loopback or one that presents a full key."""
        if not self.keys_configured or self.is_loopback_client(client):
            return True
        if not bearer:
            return False
        found = self.env_ring.scope_of(bearer) or self.keys.scope_of(bearer)
        return found is KeyScope.FULL

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
        request also needs the session's CSRF token in ``X-CSRF-Token``: without it, Forbidden
        (rather than "requires an API key", which would send one looking in the wrong place)."""
        session = self.session_of(scope)
        if session is None:
            return None
        if scope.get("method", "GET") not in _SAFE_METHODS and not session.csrf_ok(
            _header(scope, CSRF_HEADER.encode())
        ):
            raise Forbidden(
                "forbidden: the session cookie came without its CSRF token (missing or wrong "
                f"{CSRF_HEADER} header); reload the page, or send an API key instead"
            )
        return KeyScope.FULL if session.user.is_admin else KeyScope.READ_ONLY

    def close(self) -> None:
        self.db.close()
