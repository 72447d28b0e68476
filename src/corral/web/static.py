"""Serving the built page at ``/ui/`` with a strict Content-Security-Policy.

The CSP allows scripts and styles from the server itself only: even if a sanitiser let some
markup through, an inline ``onerror=`` or ``<script>`` in a model's answer could not run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CSP", "install_static"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_NOT_BUILT = """<!doctype html><title>corral</title>
<p>The web UI has not been built. Run <code>make install</code> (or
<code>npm ci &amp;&amp; npm run build</code> in <code>src/corral/web/frontend</code>).</p>"""


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install_static(app: FastAPI, dist: Path) -> None:
    @app.get("/ui", include_in_schema=False)
    async def ui_redirect() -> Response:
        return RedirectResponse("/ui/", status_code=308)

    @app.get("/ui/", include_in_schema=False)
    async def ui_index() -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers=HEADERS)
        return FileResponse(index, headers=HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        """Browsers ask for it on every page of the server (the UI's page links its own)."""
        icon = dist / "assets" / "favicon.svg"
        if not icon.is_file():
            return Response(status_code=404)
        return FileResponse(
            icon,
            media_type="image/svg+xml",
            headers={**HEADERS, "Cache-Control": "public, max-age=86400"},
        )

    app.mount("/ui/assets", _Assets(directory=dist / "assets", check_dir=False), name="ui")
