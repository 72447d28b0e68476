"""Fixtures for the web UI's server side: an app on the fake engine, signed-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory

ADMIN = ("admin", "correct horse battery")
USER = ("bob", "bobs password 1")

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """Clients of one app (one database); each has its own cookie jar."""
    clients: list[TestClient] = []
    apps: dict[str, object] = {}

    def make(*, address: str = "testclient", **settings: object) -> TestClient:
        """``address``: the client's address as the app sees it (TestClient's own default,
        "testclient", is no IP address and so never counts as loopback)."""
        key = repr(sorted(settings.items()))
        first = key not in apps
        if first:
            config = Settings(home=tmp_path / "home", no_default_model=True, **settings)  # type: ignore[arg-type]
            apps[key] = create_app(config, engine_factory=FakeFactory())
        client = TestClient(apps[key], client=(address, 50000))  # type: ignore[arg-type]
        if first:  # one client per app runs its lifespan; the others only send requests
            client.__enter__()
            clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def user_id(admin: TestClient, username: str) -> int:
    users = admin.get("/ui/api/admin/users").json()["users"]
    [found] = [u["id"] for u in users if u["username"] == username]
    return int(found)


def csrf_headers(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.get("/ui/api/me").json()["csrf"]}


@pytest.fixture
def admin(make_client: MakeClient) -> TestClient:
    client = make_client()
    response = client.post("/ui/api/setup", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 200, response.text
    client.headers.update({"X-CSRF-Token": response.json()["csrf"]})
    return client


@pytest.fixture
def user(admin: TestClient, make_client: MakeClient) -> TestClient:
    body = {"username": USER[0], "password": USER[1], "role": "user"}
    assert admin.post("/ui/api/admin/users", json=body).status_code == 200
    client = make_client()
    response = client.post("/ui/api/login", json={"username": USER[0], "password": USER[1]})
    assert response.status_code == 200, response.text
    client.headers.update({"X-CSRF-Token": response.json()["csrf"]})
    return client


# -- the browser tier -------------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright (never `playwright install`: no network)."""
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.web.frontend import ensure_built

    ensure_built()
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian chromium is not installed (make install installs it)"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def shot(page: object, name: str) -> Path:
    """A full-page screenshot under test-artifacts/web/, to look at after the run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


# the registry tier's real docker-registry, for the pull flow
from tests.registry.conftest import registry  # noqa: E402, F401


@pytest.fixture(scope="session")
def published(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    """smollm2:135m pushed to the session's registry, as the registry tier's fixture does, but
    in a thread: Playwright's sync API keeps an event loop running in this one."""
    from concurrent.futures import ThreadPoolExecutor

    from corral.names import parse_name
    from corral.store.create import copy_manifest
    from tests.registry.conftest import collect, seeded_store, service

    def push() -> str:
        root = tmp_path_factory.mktemp("web-publisher")
        store = seeded_store(root / "models")
        name = f"{registry.host}/library/smollm2:135m"
        copy_manifest(store, parse_name("smollm2:135m"), parse_name(name))
        assert collect(service(store, root).push(name))[-1] == {"status": "success"}
        return name

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(push).result()
