"""The browser UI at ``/ui/``: accounts, chats, model administration, API keys.

:class:`WebUI` holds the web state (database, accounts, chats, keys, login limiter) and is put
on ``app.state.web`` by the app factory; :func:`install_web` adds its routes and static files.
The page itself is built from ``frontend/`` (npm + esbuild) into ``frontend/dist``.
"""

from __future__ import annotations

from fastapi import FastAPI

from corral.web.state import SESSION_COOKIE, WebUI

__all__ = ["SESSION_COOKIE", "WebUI", "install_web"]


def install_web(app: FastAPI, web: WebUI) -> None:
    from corral.web.admin import router as admin_router
    from corral.web.routes import router
    from corral.web.static import install_static

    app.state.web = web
    app.include_router(router)
    app.include_router(admin_router)
    install_static(app, web.dist)
