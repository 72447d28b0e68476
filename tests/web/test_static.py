"""The page at /ui/: served with a strict CSP; a clear message when it has not been built."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from corral.web.static import CSP, install_static
from tests.web.conftest import MakeClient
from tests.web.frontend import ensure_built


def test_ui_serves_the_built_page_with_a_strict_csp(make_client: MakeClient) -> None:
    dist = ensure_built()
    client = make_client()
    redirect = client.get("/ui", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.text == (dist / "index.html").read_text()
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
    script = client.get("/ui/assets/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/assets/nope.js").status_code == 404


def test_the_page_has_a_favicon_and_favicon_ico_is_served(make_client: MakeClient) -> None:
    """Every page load asked for /favicon.ico and got a 404."""
    dist = ensure_built()
    client = make_client()
    page = client.get("/ui/").text
    assert '<link rel="icon" type="image/svg+xml" href="assets/favicon.svg">' in page
    icon = client.get("/ui/assets/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg") and len(icon.content) < 2048
    root = client.get("/favicon.ico")
    assert root.status_code == 200 and root.headers["content-type"].startswith("image/svg+xml")
    assert root.content == (dist / "assets" / "favicon.svg").read_bytes()
    assert client.get("/favicon.ico", headers={"Authorization": "Bearer x"}).status_code == 200


def test_an_unbuilt_ui_says_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    install_static(app, tmp_path / "missing")
    page = TestClient(app).get("/ui/")
    assert TestClient(app).get("/favicon.ico").status_code == 404
    assert page.status_code == 503
    assert "make install" in page.text and page.headers["content-security-policy"] == CSP
