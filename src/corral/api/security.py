"""Who may talk to the server: Host check (DNS rebinding), CORS origins, API keys.

Installed by :func:`install_security`; the stack, outermost first::

    HostCheckMiddleware   403 for a foreign Host header while bound to loopback
    CORSMiddleware        Ollama's default origins + CORRAL_ORIGINS / OLLAMA_ORIGINS
    ApiKeyMiddleware      401 / 403 on /api/* and /v1/* when keys are configured
    BodyLimitMiddleware   413 and the per-request caps (corral.api.limits)

CORS sits outside the key check so that preflights (which carry no Authorization header) are
answered and a 401 carries the CORS headers a web page needs to read it. These are plain ASGI
middlewares, outside FastAPI's exception handlers, so they render their own errors, in the
shape of the surface the path belongs to.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.anthropic.errors import error_body as anthropic_error_body
from corral.api.anthropic.errors import is_messages_path
from corral.api.openai.errors import error_body
from corral.auth.keys import KeyRing, load_keys
from corral.auth.keys import Scope as KeyScope
from corral.config import Settings
from corral.errors import CorralError, Forbidden, Unauthorized

log = logging.getLogger(__name__)

__all__ = [
    "ApiKeyMiddleware",
    "BrowserAuth",
    "HostCheckMiddleware",
    "KeySource",
    "error_response",
    "install_security",
    "origin_regex",
]

# Ollama's defaults (envconfig.AllowedOrigins): local pages on any port and desktop-app schemes.
_DEFAULT_ORIGINS = (
    r"https?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:\d+)?",
    r"(app|file|tauri|vscode-webview|vscode-file)://.*",
)
# What a read-only key may call: inference and listing. Anything not here (pull, push, create,
# copy, delete, blobs, and routes added later) needs a full key.
_READ_ONLY_ROUTES = {
    ("GET", "/api/version"),
    ("GET", "/api/tags"),
    ("GET", "/api/ps"),
    ("GET", "/api/info"),
    ("POST", "/api/fit"),
    ("POST", "/api/show"),
    ("POST", "/api/chat"),
    ("POST", "/api/generate"),
    ("POST", "/api/embed"),
    ("POST", "/api/embeddings"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
}
_OPENAI_CODES = {
    Unauthorized: "invalid_api_key",
    Forbidden: "forbidden",
}


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def error_response(scope: Scope, exc: CorralError, headers: dict[str, str] | None = None) -> Any:
    """``exc`` as the response the path's surface would give: OpenAI's shape on /v1,
    Anthropic's on /v1/messages."""
    if is_messages_path(scope.get("path", "")):
        body = anthropic_error_body(exc.status_code, exc.message)
    elif _is_under(scope.get("path", ""), "/v1"):
        code = getattr(exc, "code", None) or _OPENAI_CODES.get(type(exc))
        param = getattr(exc, "param", None)
        body = error_body(exc.status_code, exc.message, param=param, code=code)
    else:
        body = {"error": exc.message}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def origin_regex(origins: list[str]) -> str:
    """One anchored regex for Ollama's defaults plus the configured origins (``*`` globs)."""
    extra = [re.escape(o.rstrip("/")).replace(r"\*", ".*") for o in origins]
    return "^(" + "|".join([*_DEFAULT_ORIGINS, *extra]) + ")$"


# -- Host check -------------------------------------------------------------------------------


def _host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback_name(name: str, *, unspecified: bool = True) -> bool:
    """localhost, *.localhost, or a loopback IP literal (or 0.0.0.0 / ::, as Ollama allows)."""
    name = name.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or (unspecified and ip.is_unspecified)


class HostCheckMiddleware:
    """DNS-rebinding protection, as Ollama's allowedHostsMiddleware.

    A page on evil.example whose name is re-pointed at 127.0.0.1 reaches a loopback server as
    "same origin", so CORS does not stop it; only its Host header gives it away. The check
    applies when the server is configured on loopback and the connection really arrived on a
    loopback socket (in-process test transports have none).
    """

    def __init__(self, app: ASGIApp, *, bind_host: str, allowed: list[str]) -> None:
        self.app = app
        self.enabled = is_loopback_name(bind_host, unspecified=False)
        self.allowed = {bind_host.lower(), *(h.lower() for h in allowed)}

    def _allowed(self, scope: Scope) -> bool:
        server = scope.get("server")
        if (
            not self.enabled
            or not server
            or not is_loopback_name(str(server[0]), unspecified=False)
        ):
            return True
        host = ""
        for key, value in scope.get("headers", ()):
            if key == b"host":
                host = value.decode("latin-1")
                break
        name = _host_name(host)
        return not name or is_loopback_name(name) or name in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        exc = Forbidden(
            "forbidden: this server listens on loopback and does not accept this Host header "
            "(DNS-rebinding protection); add the name to CORRAL_ALLOWED_HOSTS to allow it"
        )
        await error_response(scope, exc)(scope, receive, send)


# -- API keys ---------------------------------------------------------------------------------


def _bearer(scope: Scope) -> str | None:
    """The key a client sent: ``Authorization: Bearer KEY``, or ``x-api-key: KEY`` as
    Anthropic's SDKs (and Claude Code) send it."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    for key, value in scope.get("headers", ()):
        if key == b"x-api-key" and value.strip():
            return str(value.decode("latin-1").strip())
    return None


def _read_only_allows(method: str, path: str) -> bool:
    path = path.rstrip("/") or "/"
    if method == "HEAD":
        method = "GET"
    return (method, path) in _READ_ONLY_ROUTES or (
        method == "GET" and path.startswith("/v1/models/")
    )


class KeySource(Protocol):
    """A second set of keys beside CORRAL_API_KEYS (the web UI's): true when it holds any."""

    def __bool__(self) -> bool: ...

    def scope_of(self, key: str) -> KeyScope | None: ...


# What a request's browser session (cookie, plus CSRF header when state-changing) allows;
# it may raise a CorralError (a session without its CSRF token), which is the answer then.
BrowserAuth = Callable[[Scope], KeyScope | None]


class ApiKeyMiddleware:
    """``Authorization: Bearer KEY`` on /api/* and /v1/* when any key is configured (in
    CORRAL_API_KEYS or in ``extra``, the web UI's keys). A request without a key may instead
    carry a web UI session (``browser``): an admin's counts as a full key, a user's as a
    read-only one."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        extra: KeySource | None = None,
        browser: BrowserAuth | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.extra = extra
        self.browser = browser

    def _scope_of(self, token: str) -> KeyScope | None:
        found = self.keys.scope_of(token)
        if found is None and self.extra is not None:
            found = self.extra.scope_of(token)
        return found

    def _refusal(self, scope: Scope) -> CorralError | None:
        path = scope.get("path", "")
        configured = bool(self.keys) or bool(self.extra)
        if not configured or not (_is_under(path, "/api") or _is_under(path, "/v1")):
            return None
        token = _bearer(scope)
        if token is None:
            try:  # a session whose state-changing call lacks its CSRF token: Forbidden
                key_scope = self.browser(scope) if self.browser is not None else None
            except CorralError as exc:
                return exc
            if key_scope is None:
                return Unauthorized(
                    "unauthorized: this server requires an API key; "
                    "send it as 'Authorization: Bearer <key>'"
                )
        else:
            key_scope = self._scope_of(token)
        if key_scope is None:
            return Unauthorized("unauthorized: invalid API key")
        if key_scope is KeyScope.READ_ONLY and not _read_only_allows(scope["method"], path):
            return Forbidden(
                f"forbidden: a read-only API key cannot call {scope['method']} {path}; "
                "use a full key"
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(refusal, Unauthorized) else None
        await error_response(scope, refusal, headers)(scope, receive, send)


def install_security(
    app: FastAPI,
    settings: Settings,
    *,
    extra_keys: KeySource | None = None,
    browser: BrowserAuth | None = None,
) -> None:
    """Add the middleware stack above (innermost first: Starlette wraps the last one added
    around everything before it). Raises KeyConfigError for a bad CORRAL_API_KEYS."""
    from corral.api.limits import BodyLimitMiddleware, Limits

    secret = settings.api_keys.get_secret_value() if settings.api_keys else None
    app.add_middleware(BodyLimitMiddleware, limits=Limits.from_settings(settings))
    keys = load_keys(secret)
    app.add_middleware(ApiKeyMiddleware, keys=keys, extra=extra_keys, browser=browser)
    if keys or extra_keys:
        # Keys made in the web UI persist in corral.db: say at start-up that they are in force.
        log.info(
            "API keys in force: %d from CORRAL_API_KEYS, %s from the web UI; "
            "/api and /v1 need Authorization: Bearer",
            len(keys.entries),
            "some" if extra_keys else "none",
        )
    allow_all = "*" in settings.origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if allow_all else [],
        allow_origin_regex=None if allow_all else origin_regex(settings.origins),
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(
        HostCheckMiddleware,
        bind_host=settings.address.host,
        allowed=settings.allowed_hosts,
    )
