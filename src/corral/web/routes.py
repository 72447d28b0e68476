"""The UI's own JSON API, part one: set-up, sign-up, sign-in/out, the current user, chats.

All under ``/ui/api``; errors are ``{"error": "..."}`` like the rest of the server.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from corral.errors import Forbidden, Unauthorized
from corral.web.accounts import Session, TooManyAttempts, User
from corral.web.chats import ChatPatch
from corral.web.deps import CurrentSession, Web, check_origin, clear_cookie, set_cookie

__all__ = ["router"]

router = APIRouter(prefix="/ui/api", include_in_schema=False)

SIGNUP = "signup_enabled"
APPROVAL = "signup_approval"


class Credentials(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _client(request: Request) -> str:
    """The client's address, or "proxied" for a request a proxy passed on: a reverse proxy on
    this machine connects from loopback for clients anywhere, so such a request never counts
    as one from this machine (a client can add these headers, never remove the proxy's)."""
    if any(request.headers.get(name) for name in _PROXY_HEADERS):
        return "proxied"
    return request.client.host if request.client else ""


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _me(session: Session, web: Web) -> dict[str, Any]:
    return {"user": session.user.public(), "csrf": session.csrf, "auth": web.auth}


def _sign_in(web: Web, user: User, request: Request, response: Response) -> dict[str, Any]:
    """A new session for ``user``, its cookie on ``response``, and what ``/me`` says."""
    token = web.accounts.start_session(user)
    set_cookie(web, request, response, token)
    session = web.accounts.session(token)
    assert session is not None
    return _me(session, web)


@router.get("/state")
def state(web: Web) -> dict[str, Any]:
    """What the sign-in page needs to know before anyone is signed in."""
    return {
        "auth": web.auth,
        "needs_setup": web.auth and web.accounts.count() == 0,
        "signup": web.accounts.setting(SIGNUP),
        # with API keys, set-up needs this machine's loopback or a full key (see setup)
        "setup_needs_key": web.keys_configured,
    }


@router.post("/setup")
def setup(body: Credentials, request: Request, response: Response, web: Web) -> dict[str, Any]:
    """The first visit: create the admin account (only while there is no user at all)."""
    check_origin(request)
    if not web.may_set_up(_client(request), _bearer(request)):
        raise Forbidden(
            "forbidden: this server requires API keys, so the admin account can only be "
            f"created on the server machine itself (open http://localhost:{web.port}/ui/ there) "
            "or by sending a full API key as 'Authorization: Bearer <key>'"
        )
    user = web.accounts.create_first_admin(body.username, body.password)
    return _sign_in(web, user, request, response)


@router.post("/register")
def register(body: Credentials, request: Request, response: Response, web: Web) -> dict[str, Any]:
    """Self sign-up, when the admin has enabled it; may wait for approval."""
    check_origin(request)
    if not web.accounts.setting(SIGNUP):
        raise Forbidden("sign-up is disabled; ask an administrator for an account")
    pending = web.accounts.setting(APPROVAL, default=True)
    user = web.accounts.create(
        body.username, body.password, "user", "pending" if pending else "active"
    )
    if pending:
        return {"pending": True, "user": user.public()}
    return _sign_in(web, user, request, response)


@router.post("/login")
def login(body: Credentials, request: Request, response: Response, web: Web) -> Any:
    check_origin(request)
    address = request.client.host if request.client else "?"
    try:
        web.limiter.check(address, body.username)
    except TooManyAttempts as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"error": exc.message}, status_code=429, headers=headers)
    user = web.accounts.authenticate(body.username, body.password)
    if user is None:
        web.limiter.failed(address, body.username)
        raise Unauthorized("wrong user name or password")
    web.limiter.succeeded(address, body.username)
    if user.status == "pending":
        raise Forbidden("this account is waiting for an administrator's approval")
    if user.status == "disabled":
        raise Forbidden("this account is disabled")
    return _sign_in(web, user, request, response)


@router.post("/logout")
def logout(request: Request, response: Response, session: CurrentSession, web: Web) -> Any:
    web.accounts.end_session(request.cookies.get(web.cookie, ""))
    clear_cookie(web, response)
    return {"ok": True}


@router.get("/me")
def me(request: Request, response: Response, web: Web) -> dict[str, Any]:
    """The signed-in user and the session's CSRF token. Single-user mode signs the page in
    as the local admin here."""
    session = web.session_of(request.scope)
    if session is None and not web.auth and web.may_sign_in_locally(_client(request)):
        return _sign_in(web, web.local_user(), request, response)
    if session is None:
        raise Unauthorized("unauthorized: sign in first")
    return _me(session, web)


# -- chats ----------------------------------------------------------------------------------


@router.get("/chats")
def list_chats(session: CurrentSession, web: Web, q: str = "") -> dict[str, Any]:
    return {"chats": web.chats.list(session.user.id, q[:200])}


@router.post("/chats")
def create_chat(body: ChatPatch, session: CurrentSession, web: Web) -> dict[str, Any]:
    return web.chats.create(session.user.id, body)


@router.get("/chats/{chat_id}")
def get_chat(chat_id: str, session: CurrentSession, web: Web) -> dict[str, Any]:
    return web.chats.get(session.user.id, chat_id)


@router.patch("/chats/{chat_id}")
def update_chat(chat_id: str, body: ChatPatch, session: CurrentSession, web: Web) -> dict[str, Any]:
    return web.chats.update(session.user.id, chat_id, body)


@router.delete("/chats/{chat_id}")
def delete_chat(chat_id: str, session: CurrentSession, web: Web) -> dict[str, bool]:
    web.chats.delete(session.user.id, chat_id)
    return {"ok": True}
