"""FastAPI dependencies of the UI's routes: the web state, the signed-in user, CSRF, admin."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from corral.errors import Forbidden, Unauthorized
from corral.web.accounts import SESSION_SECONDS, Session, User
from corral.web.state import CSRF_HEADER, WebUI

__all__ = [
    "Admin",
    "CurrentSession",
    "Web",
    "check_origin",
    "clear_cookie",
    "set_cookie",
]

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _web(request: Request) -> WebUI:
    web: WebUI = request.app.state.web
    return web


Web = Annotated[WebUI, Depends(_web)]


def check_origin(request: Request) -> None:
    """A state-changing call from another site's page is refused: when the browser names the
    page's origin, its host must be the one the request was sent to."""
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if not origin:
        return
    # behind a reverse proxy that rewrites Host, X-Forwarded-Host names the page's host
    hosts = {request.headers.get(h, "").lower() for h in ("host", "x-forwarded-host")}
    if urlsplit(origin).netloc.lower() not in hosts - {""}:
        raise Forbidden("forbidden: cross-origin request")


def set_cookie(web: WebUI, request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        web.cookie,
        token,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(web: WebUI, response: Response) -> None:
    response.delete_cookie(web.cookie, path="/", httponly=True, samesite="lax")


def _session(request: Request, web: Web) -> Session:
    check_origin(request)
    session = web.session_of(request.scope)
    if session is None:
        raise Unauthorized("unauthorized: sign in first")
    if request.method not in _SAFE_METHODS and not session.csrf_ok(
        request.headers.get(CSRF_HEADER)
    ):
        raise Forbidden("forbidden: missing or wrong CSRF token; reload the page")
    return session


CurrentSession = Annotated[Session, Depends(_session)]


def _admin(session: CurrentSession) -> User:
    if not session.user.is_admin:
        raise Forbidden("forbidden: administrators only")
    return session.user


Admin = Annotated[User, Depends(_admin)]
