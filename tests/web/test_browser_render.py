"""The browser tier on a real server with a scripted engine, where the model's words must be
exact: untrusted output is shown as text and runs nothing; Markdown, code highlighting and the
copy button; Enter / Shift+Enter; regenerate; edit and resend; per-chat settings; themes and a
phone-width screen. (The real-engine flow is in test_browser_flow.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import serve_in_thread
from tests.web.conftest import shot

pytestmark = pytest.mark.browser

HOSTILE = [
    "Look: ",
    '<img src=x onerror="window.__pwned = 1">',
    " and ",
    "<script>window.__pwned = 2</script>",
    "\n\n[link](javascript:window.__pwned=3) **bold**\n\n",
    "```python\nprint('hi')\n```\n",
]


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeFactory]]:
    factory = FakeFactory(engine_kwargs={"words": HOSTILE})
    home = tmp_path_factory.mktemp("render") / "home"
    app = create_app(Settings(home=home, webui_auth=False), engine_factory=factory)
    with serve_in_thread(app) as url:
        yield url, factory


@pytest.fixture
def page(browser: Any, fake_server: tuple[str, FakeFactory]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(fake_server[0] + "/ui/")
    yield page
    assert dialogs == [], f"the page opened dialogs: {dialogs}"
    context.close()


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait (bounded) for something the browser makes happen on the server."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never saw it"
        time.sleep(0.05)


def _send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def test_model_output_is_shown_as_text_and_runs_nothing(page: Page) -> None:
    expect(page.get_by_label("Model", exact=True)).to_have_value("smollm2:135m")
    _send(page, "say something nasty")
    answer = page.locator("article.assistant .markdown").last
    expect(answer).to_contain_text("window.__pwned = 2", timeout=30_000)
    expect(page.locator("article.assistant .stats").last).to_contain_text("tokens/s")
    text = answer.inner_text()
    assert '<img src=x onerror="window.__pwned = 1">' in text
    assert "<script>window.__pwned = 2</script>" in text
    assert answer.locator("img").count() == 0 and answer.locator("script").count() == 0
    assert page.locator("[onerror]").count() == 0
    link = answer.locator("a", has_text="link")
    assert (link.get_attribute("href") or "") == ""  # DOMPurify drops javascript: URLs
    expect(answer.locator("strong")).to_have_text("bold")  # Markdown still renders
    assert page.evaluate("window.__pwned") is None
    shot(page, "render-hostile-output")

    # highlighted code with a working copy button
    code = answer.locator(".code")
    expect(code.locator(".code-bar span")).to_have_text("python")
    expect(code.locator(".hljs-built_in")).to_have_text("print")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    code.get_by_role("button", name="Copy code").click()
    expect(code.get_by_role("button", name="Copy code")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')"

    # after a reload the stored answer is rendered the same way
    page.reload()
    page.locator(".chat-list a").first.click()
    stored = page.locator("article.assistant .markdown").last
    expect(stored).to_contain_text("<script>window.__pwned = 2</script>")
    assert stored.locator("img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_enter_sends_and_shift_enter_makes_a_new_line(
    page: Page, fake_server: tuple[str, FakeFactory]
) -> None:
    box = page.get_by_label("Message")
    box.click()
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    assert page.locator("article.user").count() == 0
    box.press("Enter")
    expect(page.locator("article.user .bubble")).to_have_text("first line\nsecond line")
    expect(box).to_have_value("")
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s")
    engine = fake_server[1].engines[-1]
    assert engine.calls[-1].messages[-1] == {"role": "user", "content": "first line\nsecond line"}


def test_regenerate_edit_and_settings(page: Page, fake_server: tuple[str, FakeFactory]) -> None:
    engine_calls = lambda: fake_server[1].engines[-1].calls  # noqa: E731
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("System prompt").fill("You are terse.")
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_label("Context length (num_ctx)").fill("2048")
    page.get_by_label("Context length (num_ctx)").blur()
    _send(page, "question one")
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s")
    last = engine_calls()[-1]
    assert last.messages[0] == {"role": "system", "content": "You are terse."}
    assert last.params.sampling["temperature"] == 0.3
    assert fake_server[1].engines[-1].spec.num_ctx == 2048  # context length reloads the model
    before = len(engine_calls())

    page.get_by_role("button", name="Regenerate").click()
    wait_for(lambda: len(engine_calls()) == before + 1)
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
    assert page.locator("article.assistant").count() == 1  # replaced, not appended

    page.locator("article.user").get_by_role("button", name="Edit").click()
    page.get_by_label("Edit message").fill("question two")
    page.get_by_role("button", name="Save & send").click()
    wait_for(lambda: len(engine_calls()) == before + 2)
    expect(page.locator("article.user .bubble")).to_have_text("question two")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
    assert engine_calls()[-1].messages[-1] == {"role": "user", "content": "question two"}
    assert page.locator("article.user").count() == 1

    # the settings were saved with the chat
    page.reload()
    page.locator(".chat-list a", has_text="question one").click()
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("System prompt")).to_have_value("You are terse.")
    expect(page.get_by_label("Context length")).to_have_value("2048")
    expect(page.locator("article.user .bubble")).to_have_text("question two")


def test_themes_and_phone_width(page: Page) -> None:
    _send(page, "hello")
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s")
    html = page.locator("html")
    start = html.get_attribute("data-theme")
    toggle = page.get_by_role("button", name="theme")
    assert start in ("light", "dark")
    flipped = "dark" if start == "light" else "light"
    toggle.click()
    expect(html).to_have_attribute("data-theme", flipped)
    shot(page, f"render-theme-{flipped}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    toggle.click()
    expect(html).to_have_attribute("data-theme", start)
    shot(page, f"render-theme-{start}")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    page.reload()  # the choice is remembered
    expect(html).to_have_attribute("data-theme", start)

    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    expect(page.get_by_label("Message")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    # the top bar keeps the brand, the user name and every nav label whole, on screen
    expect(page.locator(".topbar .brand")).to_have_text("corral")
    expect(page.locator(".topbar .brand")).to_be_visible()
    expect(page.locator(".topbar .who")).to_have_text("local")
    expect(page.locator(".topbar .who")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Chat", "Models", "Users", "API keys"):
        link = nav.get_by_role("link", name=label, exact=True)
        expect(link).to_be_visible()
        expect(link).to_have_text(label)
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (label, box)
        clipped = link.evaluate("(a) => a.scrollWidth > a.clientWidth")
        assert not clipped, f"{label} is cut off at phone width"
    assert nav.evaluate("(n) => n.scrollWidth <= n.clientWidth"), "the nav scrolls sideways"
    shot(page, "render-phone-topbar")
    page.get_by_role("button", name="☰ Chats").click()
    expect(page.locator(".chat-list a").first).to_be_visible()
    assert Path(shot(page, "render-phone")).stat().st_size > 0


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => !(el.getAttribute('aria-label') || (el.labels && el.labels.length)
        || (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 120))"""


def test_every_control_has_a_label(page: Page, fake_server: tuple[str, FakeFactory]) -> None:
    _send(page, "hello")
    expect(page.locator("article.assistant .stats")).to_contain_text("tokens/s")
    page.get_by_role("button", name="Settings").click()
    page.locator("article.user").get_by_role("button", name="Edit").click()
    assert page.evaluate(UNLABELLED) == []
    for admin_page, heading in (("models", "Models"), ("users", "Users"), ("keys", "API keys")):
        page.goto(f"{fake_server[0]}/ui/#/{admin_page}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.locator("tbody tr").first).to_be_visible()
        assert page.evaluate(UNLABELLED) == [], admin_page
    page.get_by_role("link", name="Models").click()
    page.get_by_role("button", name="Details").click()
    details = page.get_by_label("Details of smollm2:135m")
    expect(details.locator(".facts")).to_contain_text("Quantization")
    expect(details.locator(".facts")).to_contain_text("Q4_1")
    expect(details.locator(".facts")).to_contain_text("Context length")
    shot(page, "render-models-details")


def test_a_chat_error_shows_once_in_the_conversation(page: Page) -> None:
    """A refused request (num_ctx below 16) used to show twice: as grey text in an empty
    answer that still offered Copy, and as red text stuck to the sidebar's edge."""
    page.get_by_role("button", name="Settings").click()
    field = page.get_by_label("Context length (num_ctx)")
    field.fill("8")
    field.blur()
    _send(page, "this fails")
    answer = page.locator("article.assistant").last
    error = answer.locator(".answer-error")
    expect(error).to_contain_text("num_ctx must be at least 16, got 8")
    expect(error).to_have_attribute("role", "alert")
    expect(page.get_by_text("num_ctx must be at least 16")).to_have_count(1)  # once
    expect(page.locator(".chat-error")).to_have_count(0)
    assert answer.get_by_role("button", name="Copy", exact=True).count() == 0  # nothing to copy
    expect(answer.get_by_role("button", name="Regenerate")).to_be_visible()  # to retry
    assert "error:" not in answer.locator(".stats").inner_text()
    padding, border = error.evaluate(
        "(e) => [getComputedStyle(e).paddingLeft, getComputedStyle(e).borderLeftWidth]"
    )
    assert padding != "0px" and border != "0px", (padding, border)  # a styled box
    shot(page, "render-chat-error")

    # fixed, the retry answers and the error goes
    field.fill("2048")
    field.blur()
    answer.get_by_role("button", name="Regenerate").click()
    expect(page.locator("article.assistant .stats").last).to_contain_text("tokens/s")
    expect(page.locator(".answer-error")).to_have_count(0)
    expect(  # the answer's own Copy (its code blocks have "Copy code" buttons too)
        page.locator("article.assistant").last.get_by_role("button", name="Copy", exact=True)
    ).to_be_visible()


def test_a_new_chat_starts_with_the_model_last_used(
    page: Page, fake_server: tuple[str, FakeFactory]
) -> None:
    """Not the alphabetically first model: the user's last one, else smollm2:135m."""
    import httpx

    url = fake_server[0]
    first = "aaa.example/library/first:1b"  # sorts before smollm2:135m
    copied = httpx.post(f"{url}/api/copy", json={"source": "smollm2:135m", "destination": first})
    assert copied.status_code == 200, copied.text
    try:
        page.reload()
        select = page.get_by_label("Model", exact=True)
        expect(select.locator("option")).to_have_count(2)
        expect(select).to_have_value("smollm2:135m")  # the default, though listed second
        select.select_option(first)
        _send(page, "which model?")
        expect(page.locator("article.assistant .stats").last).to_contain_text("tokens/s")
        page.get_by_role("link", name="New chat").click()
        expect(select).to_have_value(first)
        page.reload()
        expect(page.get_by_label("Model", exact=True)).to_have_value(first)
    finally:
        deleted = httpx.request("DELETE", f"{url}/api/delete", json={"model": first})
        assert deleted.status_code == 200, deleted.text


def test_the_page_asks_for_no_missing_file(
    browser: Any, fake_server: tuple[str, FakeFactory]
) -> None:
    """/favicon.ico was a 404 on every load: the page links an icon, and the server has one."""
    context = browser.new_context()
    page = context.new_page()
    failures: list[str] = []
    page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status} {r.url}"))
    page.goto(fake_server[0] + "/ui/")
    expect(page.get_by_label("Message")).to_be_visible()
    icon = page.evaluate(
        "fetch(document.querySelector('link[rel=icon]').href).then((r) => [r.status, "
        "r.headers.get('content-type')])"
    )
    assert icon[0] == 200 and icon[1].startswith("image/svg+xml"), icon
    assert page.evaluate("fetch('/favicon.ico').then((r) => r.status)") == 200
    page.wait_for_timeout(300)
    assert failures == []
    context.close()


def test_set_up_with_api_keys_works_from_this_machine(browser: Any, tmp_path: Path) -> None:
    """With CORRAL_API_KEYS set, the page on loopback (a real socket: 127.0.0.1) may still
    create the admin, and says how to do it from elsewhere."""
    app = create_app(
        Settings(home=tmp_path / "home", api_keys="k-secret"),  # type: ignore[arg-type]
        engine_factory=FakeFactory(),
    )
    with serve_in_thread(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.goto(url + "/ui/")
        expect(page.get_by_role("heading", name="Create the admin account")).to_be_visible()
        expect(page.get_by_text("This server requires API keys")).to_be_visible()
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password", exact=True).fill("admin password 1")
        page.get_by_label("Repeat the password").fill("admin password 1")
        page.get_by_role("button", name="Create admin account").click()
        expect(page.get_by_label("Message")).to_be_visible()
        assert page.evaluate("fetch('/api/tags').then((r) => r.status)") == 200
        assert httpx_status(url + "/api/tags") == 401  # without the session: still locked
        context.close()


def httpx_status(url: str) -> int:
    import httpx

    return httpx.get(url).status_code
