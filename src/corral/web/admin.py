"""The UI's own JSON API, part two: administration (users, sign-up settings, API keys).

Every route here depends on :data:`~corral.web.deps.Admin`: a regular user gets 403.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from corral.auth.keys import Scope
from corral.errors import BadRequest
from corral.web.deps import Admin, Web
from corral.web.routes import APPROVAL, SIGNUP

__all__ = ["router"]

router = APIRouter(prefix="/ui/api/admin", include_in_schema=False)


class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Literal["admin", "user"] = "user"


class UserPatch(BaseModel):
    role: Literal["admin", "user"] | None = None
    status: Literal["active", "pending", "disabled"] | None = None
    password: str | None = Field(default=None, max_length=1024)


class SignupSettings(BaseModel):
    signup: bool | None = None
    approval: bool | None = None


class NewKey(BaseModel):
    name: str = Field(default="", max_length=100)
    scope: Literal["full", "read-only"] = "full"


@router.get("/users")
def list_users(admin: Admin, web: Web) -> dict[str, Any]:
    return {"users": [u.public() for u in web.accounts.list()]}


@router.post("/users")
def create_user(body: NewUser, admin: Admin, web: Web) -> dict[str, Any]:
    return web.accounts.create(body.username, body.password, body.role, "active").public()


@router.patch("/users/{user_id}")
def update_user(user_id: int, body: UserPatch, admin: Admin, web: Web) -> dict[str, Any]:
    if user_id == admin.id and (body.role == "user" or body.status not in (None, "active")):
        raise BadRequest("you cannot demote or disable your own account")
    user = web.accounts.update(user_id, role=body.role, status=body.status, password=body.password)
    return user.public()


@router.delete("/users/{user_id}")
def delete_user(user_id: int, admin: Admin, web: Web) -> dict[str, bool]:
    if user_id == admin.id:
        raise BadRequest("you cannot delete your own account")
    web.accounts.delete(user_id)
    return {"ok": True}


@router.get("/settings")
def get_settings(admin: Admin, web: Web) -> dict[str, bool]:
    return {
        "signup": web.accounts.setting(SIGNUP),
        "approval": web.accounts.setting(APPROVAL, default=True),
    }


@router.patch("/settings")
def update_settings(body: SignupSettings, admin: Admin, web: Web) -> dict[str, bool]:
    if body.signup is not None:
        web.accounts.set_setting(SIGNUP, body.signup)
    if body.approval is not None:
        web.accounts.set_setting(APPROVAL, body.approval)
    return get_settings(admin, web)


@router.get("/keys")
def list_keys(admin: Admin, web: Web) -> dict[str, Any]:
    return {"keys": web.keys.list()}


@router.post("/keys")
def create_key(body: NewKey, admin: Admin, web: Web) -> dict[str, Any]:
    return web.keys.create(body.name, Scope(body.scope), admin.id)


@router.delete("/keys/{key_id}")
def revoke_key(key_id: int, admin: Admin, web: Web) -> dict[str, bool]:
    web.keys.revoke(key_id)
    return {"ok": True}
