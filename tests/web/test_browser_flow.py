"""The flow people follow, in Debian's chromium against a real ``corral serve`` (real
llama-server, SmolLM2) and a real docker-registry: create the admin, pull a model through the
Models page and watch the progress reach 100%, chat and see the answer stream, stop an answer
and see the engine stop, reload and find the conversation, sign out and in, a second user kept
out of the admin pages, API keys, unload and delete. The tests run in order on one page."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.live import LiveServer, alive, engine_pids, engine_port, start_server
from tests.registry.servers import Proxy, ProxyConfig, Registry
from tests.web.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.registry]

ADMIN = ("admin", "admin password 1")
BOB = ("bob", "bobs password 1")
SLOW = 180_000  # ms: bounds for waits on the engine (load + answer on 2 shared cores)
QUESTION = "What is the capital of France? Answer in one sentence."
ANSWERS: list[str] = []  # what the page showed, to find again after a reload


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("webflow") / "home"
    live = start_server(home, CORRAL_NO_DEFAULT_MODEL="true", CORRAL_NUM_THREADS="2")
    yield live
    engines = engine_pids(live.process.pid)
    assert live.stop() in (0, -signal.SIGTERM), live.log.read_text()[-2000:]
    assert [pid for pid in engines if alive(pid)] == []


class Dialogs:
    """Answers the page's confirm() dialogs as told, and records them."""

    def __init__(self) -> None:
        self.accept = True
        self.seen: list[str] = []

    def __call__(self, dialog: Any) -> None:
        self.seen.append(dialog.message)
        dialog.accept() if self.accept else dialog.dismiss()


@pytest.fixture(scope="module")
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture(scope="module")
def page(browser: Any, server: LiveServer, dialogs: Dialogs) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", dialogs)
    page.goto(server.url + "/ui/")
    yield page
    context.close()


def _fill_credentials(page: Page, username: str, password: str) -> None:
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(password)


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_first_run_creates_the_admin(page: Page) -> None:
    expect(page.get_by_role("heading", name="Create the admin account")).to_be_visible()
    _fill_credentials(page, *ADMIN)
    page.get_by_label("Repeat the password").fill(ADMIN[1])
    shot(page, "flow-01-first-run")
    page.get_by_role("button", name="Create admin account").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Models")).to_be_visible()
    expect(page.locator(".who")).to_have_text("admin")


def test_a_pull_can_be_cancelled(page: Page, published: str, registry: Registry) -> None:
    """Through a proxy that serves blobs at 1 MB/s per connection: Cancel ends the download
    on the server too (the proxy stops sending well before the model is complete)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    expect(page.get_by_text("No models yet")).to_be_visible()
    with Proxy(ProxyConfig(registry.host, rate=1e6)) as slow:
        name = published.replace(registry.host, slow.host)
        page.get_by_label("Model name").fill(name)
        page.get_by_role("button", name="Pull", exact=True).click()
        expect(page.locator(".pull-progress progress").first).to_be_visible(timeout=SLOW)
        deadline = time.monotonic() + 60  # a bound on waiting for the download to be under way
        while slow.cfg.blob_bytes < 1_000_000:
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("alert")).to_have_text("Pull cancelled.")
        expect(page.get_by_role("button", name="Pull", exact=True)).to_be_visible()
        deadline = time.monotonic() + 30  # a bound on waiting for the transfer to stop
        previous = -1
        while slow.cfg.blob_bytes != previous and time.monotonic() < deadline:
            previous = slow.cfg.blob_bytes
            time.sleep(1.0)
        assert slow.cfg.blob_bytes == previous, "the server kept downloading"
        assert 0 < slow.cfg.blob_bytes < 90_000_000  # the 98 MB model was never complete
    shot(page, "flow-02a-pull-cancelled")
    expect(page.get_by_text("No models yet")).to_be_visible()


def test_pull_through_the_models_page(page: Page, published: str) -> None:
    expect(page.get_by_text("No models yet")).to_be_visible()
    page.get_by_label("Model name").fill("")
    page.get_by_label("Model name").fill(published)
    page.get_by_role("button", name="Pull", exact=True).click()
    expect(page.get_by_test_id("pull-status")).to_have_text("success", timeout=SLOW)
    bars = page.locator(".pull-progress progress")
    assert bars.count() >= 2  # the GGUF, the template, the params...: one bar per layer
    for i in range(bars.count()):
        assert bars.nth(i).get_attribute("value") == "100"
    assert set(page.locator(".pull-progress .pct").all_inner_texts()) == {"100%"}
    row = page.locator(f'tr[data-model="{published}"]')
    expect(row).to_be_visible()
    cells = row.locator("td").all_inner_texts()
    assert cells[1:4] == ["llama", "134.52M", "Q4_1"], cells
    assert cells[4].endswith("MB")
    shot(page, "flow-02-pulled")

    row.get_by_role("button", name="Details").click()
    details = page.get_by_label(f"Details of {published}")
    details.get_by_text("Template").click()
    expect(details).to_contain_text("<|im_start|>")
    page.get_by_role("button", name="Close").click()


def test_chat_streams_an_answer(page: Page, published: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value(published)
    # record every length the answer goes through, to see it grow token by token
    page.evaluate(
        """() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const answer = document.querySelector('article.assistant .markdown');
            if (answer) window.__lengths.push(answer.textContent.length);
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }"""
    )
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Temperature").fill("0")  # greedy: the same answer every run
    page.get_by_label("Temperature").blur()
    page.get_by_role("button", name="Settings").click()
    _send(page, QUESTION)
    stats = page.locator("article.assistant .stats")
    expect(stats).to_contain_text("tokens/s", timeout=SLOW)
    answer = page.locator("article.assistant .markdown").inner_text()
    assert "Paris" in answer, answer
    ANSWERS.append(answer)
    lengths = sorted(set(page.evaluate("window.__lengths")) - {0})
    assert len(lengths) >= 3, f"the answer arrived in one piece: {lengths}"
    assert "total" in stats.inner_text() and "tokens" in stats.inner_text()
    shot(page, "flow-03-answer")


def test_stop_cancels_generation_on_the_server(page: Page, server: LiveServer) -> None:
    page.get_by_role("link", name="New chat").click()
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Max tokens").fill("3000")
    page.get_by_label("Max tokens").blur()
    _send(page, "Write a very long story about a dragon who learns to cook.")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    answer = page.locator("article.assistant .markdown")
    expect(answer).to_have_text(_longer_than(40), timeout=SLOW)
    [pid] = engine_pids(server.process.pid)
    slots_url = f"http://127.0.0.1:{engine_port(pid)}/slots"
    assert any(slot["is_processing"] for slot in httpx.get(slots_url).json())
    stop.click()
    expect(page.locator("article.assistant .stats")).to_have_text("stopped")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    deadline = time.monotonic() + 10  # a bound on waiting, not a speed claim
    while time.monotonic() < deadline:
        if not any(slot["is_processing"] for slot in httpx.get(slots_url).json()):
            break
        time.sleep(0.05)
    assert not any(slot["is_processing"] for slot in httpx.get(slots_url).json())
    shot(page, "flow-04-stopped")


def _longer_than(n: int) -> Any:
    import re

    return re.compile(r"[\s\S]{" + str(n) + ",}")


def test_reload_finds_the_conversations(page: Page) -> None:
    page.reload()
    chats = page.locator(".chat-list li a")
    expect(chats).to_have_count(2)
    assert chats.first.inner_text().startswith("Write a very long story")
    page.locator(".chat-list a", has_text="What is the capital").click()
    expect(page.locator("article.user .bubble")).to_have_text(QUESTION)
    expect(page.locator("article.assistant .markdown")).to_have_text(ANSWERS[0])
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s")
    page.get_by_label("Search chats").fill("dragon")
    expect(chats).to_have_count(1)
    page.get_by_label("Search chats").fill("")
    expect(chats).to_have_count(2)


def test_sign_out_and_back_in(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _fill_credentials(page, ADMIN[0], "wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong user name or password")
    _fill_credentials(page, *ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_have_text("admin")
    expect(page.locator(".chat-list li a")).to_have_count(2)


def test_a_second_user_cannot_open_admin_pages(
    page: Page, browser: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/ui/#/users")
    page.locator('input[name="new-username"]').fill(BOB[0])
    page.locator('input[name="new-password"]').fill(BOB[1])
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator(f'tr[data-user="{BOB[0]}"]')).to_be_visible()
    shot(page, "flow-05-users")

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    bob = context.new_page()
    bob.goto(server.url + "/ui/")
    _fill_credentials(bob, *BOB)
    bob.get_by_role("button", name="Sign in").click()
    expect(bob.locator(".who")).to_have_text(BOB[0])
    nav = bob.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Chat"])
    expect(bob.locator(".chat-list li a")).to_have_count(0)  # the admin's chats are not his
    for admin_page in ("models", "users", "keys"):
        bob.goto(f"{server.url}/ui/#/{admin_page}")
        expect(bob.get_by_role("heading", name="Not allowed")).to_be_visible()
    shot(bob, "flow-06-user-refused")
    statuses = bob.evaluate(
        """async () => Promise.all(['users', 'keys', 'settings'].map(
            async (p) => (await fetch('/ui/api/admin/' + p)).status))"""
    )
    assert statuses == [403, 403, 403]
    context.close()


def test_api_keys_page(page: Page, server: LiveServer, published: str, dialogs: Dialogs) -> None:
    page.goto(server.url + "/ui/#/keys")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert key.startswith("corral-")
    shot(page, "flow-07-key-created")
    assert httpx.get(server.url + "/api/tags").status_code == 401
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(server.url + "/api/tags", headers=bearer).status_code == 200

    page.reload()  # the key is never shown again
    expect(page.locator('tr[data-key="laptop"]')).to_contain_text(key[:12])
    assert key not in page.content()

    # with keys on, the signed-in page still works through its session
    page.goto(server.url + "/ui/#/chat")
    expect(page.get_by_label("Model", exact=True)).to_have_value(published)
    _send(page, "Say hello.")
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s", timeout=SLOW)

    page.goto(server.url + "/ui/#/keys")
    dialogs.accept = True
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.locator('tr[data-key="laptop"]')).to_have_count(0)
    assert httpx.get(server.url + "/api/tags", headers=bearer).status_code == 200  # open again
    assert "Revoke the key" in dialogs.seen[-1]


def test_unload_and_delete(
    page: Page, server: LiveServer, published: str, dialogs: Dialogs
) -> None:
    page.goto(server.url + "/ui/#/models")
    running = page.locator(f'tr[data-running="{published}"]')
    expect(running).to_be_visible()
    shot(page, "flow-08-models")
    running.get_by_role("button", name=f"Unload {published}").click()
    expect(running).to_have_count(0)
    assert httpx.get(server.url + "/api/ps").json()["models"] == []

    dialogs.accept = False
    page.get_by_role("button", name=f"Delete {published}").click()
    expect(page.locator(f'tr[data-model="{published}"]')).to_be_visible()
    assert len(httpx.get(server.url + "/api/tags").json()["models"]) == 1
    dialogs.accept = True
    page.get_by_role("button", name=f"Delete {published}").click()
    expect(page.locator(f'tr[data-model="{published}"]')).to_have_count(0)
    assert httpx.get(server.url + "/api/tags").json()["models"] == []
    assert dialogs.seen[-1].startswith(f"Delete the model {published}?")


def test_rename_and_delete_a_chat(page: Page, server: LiveServer, dialogs: Dialogs) -> None:
    page.goto(server.url + "/ui/#/chat")
    chats = page.locator(".chat-list li a")
    expect(chats).to_have_count(3)
    chats.filter(has_text="Say hello.").click()
    page.get_by_role("button", name="Rename Say hello.").click()
    page.get_by_label("New title").fill("Greetings")
    page.get_by_label("New title").press("Enter")
    expect(chats.filter(has_text="Greetings")).to_have_count(1)
    expect(page.locator(".chat-title")).to_have_text("Greetings")
    page.reload()
    expect(chats.filter(has_text="Greetings")).to_have_count(1)

    dialogs.accept = True
    page.get_by_role("button", name="Delete Greetings").click()
    expect(chats).to_have_count(2)
    assert dialogs.seen[-1] == 'Delete the chat "Greetings"?'
    expect(chats.filter(has_text="Greetings")).to_have_count(0)
    expect(page.locator(".chat-title")).to_have_text("New chat")  # back to a new chat


def _patched_user(response: Any) -> bool:
    return "/ui/api/admin/users/" in response.url and response.request.method == "PATCH"


def test_sign_up_waits_for_approval(page: Page, browser: Any, server: LiveServer) -> None:
    page.goto(server.url + "/ui/#/users")
    with page.expect_response(
        lambda r: r.url.endswith("/ui/api/admin/settings") and r.request.method == "PATCH"
    ):
        page.get_by_label("Let people create their own account").check()
    expect(page.get_by_label("New accounts wait for an administrator's approval")).to_be_checked()

    context = browser.new_context()
    carol = context.new_page()
    carol.goto(server.url + "/ui/")
    carol.get_by_role("button", name="No account? Create one").click()
    _fill_credentials(carol, "carol", "carols password")
    carol.get_by_label("Repeat the password").fill("carols password")
    carol.get_by_role("button", name="Create account").click()
    expect(carol.get_by_role("status")).to_contain_text("An administrator must approve it")
    _fill_credentials(carol, "carol", "carols password")
    carol.get_by_role("button", name="Sign in").click()
    expect(carol.get_by_role("alert")).to_contain_text("waiting for an administrator's approval")

    page.reload()
    with page.expect_response(_patched_user):
        page.get_by_label("Status of carol").select_option("active")
    carol.get_by_role("button", name="Sign in").click()
    expect(carol.locator(".who")).to_have_text("carol")
    # every model was deleted above: a user is told whom to ask
    expect(carol.get_by_role("status")).to_have_text(
        "No model is installed yet. Ask an administrator to add one."
    )
    shot(carol, "flow-09-approved-user")

    with page.expect_response(_patched_user):
        page.get_by_label("Status of carol").select_option("disabled")
    carol.get_by_label("Search chats").fill("anything")  # her next call finds her signed out
    expect(carol.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()
