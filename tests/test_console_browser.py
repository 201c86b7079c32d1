"""The test console in a real Chromium (Debian's, driven by Playwright) against the
rendered service on PostgreSQL, served both as `make console` serves it (another
origin: CORS) and as vercel.json serves it (same origin, /api rewritten to the API,
its security headers applied). Screenshots go to test-artifacts/."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from .conftest import TEMPLATE
from .harness import CHROMIUM_ARGS, free_port
from .test_frontend import INSTALL_HINT, NODE_TOOLS, vercel_routes
from .test_ship_ready import answers_ready, serve_rendered
from .vercel_host import vercel_host

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]
ARTIFACTS = TEMPLATE / "test-artifacts"
# Generous functional bound for anything the page does after a click, for actions
# and assertions alike (the machine may be busy with other tests).
UI_TIMEOUT_MS = 30_000
expect.set_options(timeout=UI_TIMEOUT_MS)
SCREEN = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=375, height=800)


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, f"chromium not found on PATH; {INSTALL_HINT}"
    return path


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One per test: Playwright's sync API holds an event loop while it runs, and the
    module's fixtures need asyncio.run to drop their databases at the end."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def make_console(project: Path, api_url: str, port: int) -> Iterator[str]:
    """The project's own `make console`, on `port`, pointed at `api_url`."""
    log = project / "console.log"
    with log.open("wb") as output:
        console = subprocess.Popen(
            ["make", "console", f"CONSOLE_PORT={port}", f"BASE_URL={api_url}"],
            cwd=project,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the server make starts stops with it
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers_ok(f"{origin}/index.html"):
            assert console.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "make console never served the page"
            time.sleep(0.1)
        yield origin
    finally:
        os.killpg(console.pid, signal.SIGTERM)
        console.wait(timeout=30)


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def console_for(cookies_session: Any, extra_context: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The rendered service, with its CORS list naming the console's origin, and
    the console from `make console`."""
    port = free_port()
    origins = json.dumps([f"http://127.0.0.1:{port}"])
    # auth=none: these tests do not yet type a token into the console's token field.
    extra_context = {**extra_context, "auth": "none"}
    with (
        serve_rendered(cookies_session, extra_context, {"APP_CORS__ALLOWED_ORIGINS": origins}) as (
            answers,
            project,
            api_url,
        ),
        make_console(project, api_url, port) as console_origin,
    ):
        yield {"answers": answers, "project": project, "api": api_url, "console": console_origin}


@pytest.fixture(scope="module")
def ledger_console(cookies_session: Any) -> Iterator[dict[str, Any]]:
    with console_for(cookies_session, {}) as console:
        yield console


@pytest.fixture(scope="module")
def status_console(cookies_session: Any) -> Iterator[dict[str, Any]]:
    with console_for(cookies_session, {"example_domain": "none"}) as console:
        yield console


class Watched:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser: Browser, viewport: ViewportSize = SCREEN) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(UI_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    page = Watched(browser)
    try:
        yield page
    finally:
        page.context.close()


def open_console(watched: Watched, console: dict[str, Any]) -> Page:
    page = watched.page
    page.goto(f"{console['console']}/?api={console['api']}")
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#ready-state")).to_have_text("ready")
    return page


def api_json(console: dict[str, Any], path: str) -> Any:
    with urllib.request.urlopen(f"{console['api']}{path}", timeout=10) as response:
        return json.loads(response.read())


def api_problem(console: dict[str, Any], body: dict[str, int]) -> dict[str, Any]:
    """The API's own answer to a transfer, asked directly with a fresh key."""
    request = urllib.request.Request(
        f"{console['api']}/v1/transfers",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.headers["Content-Type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(refused.value.read())
    return problem


def show_all_accounts(page: Page) -> None:
    """One page of 100: every account this module's tests open fits on it."""
    page.select_option("#accounts-limit", "100")
    expect(page.locator("#accounts-page")).to_contain_text("(last page)")


def open_account(page: Page, owner: str, opening_minor: int) -> int:
    page.fill("#account-owner", owner)
    page.fill("#account-currency", "EUR")
    page.fill("#account-opening", str(opening_minor))
    page.click("#account-form button[type=submit]")
    result = page.locator("#account-result")
    expect(result).to_contain_text(f"{owner}:")
    match = re.search(r"Opened account #(\d+)", result.inner_text())
    assert match, result.inner_text()
    return int(match[1])


def shown_balance(page: Page, account: int) -> int:
    row = page.locator(f'#accounts-body tr[data-account-id="{account}"]')
    expect(row).to_have_count(1)
    return int(row.get_attribute("data-balance-minor") or "")


def transfer(page: Page, source: int, destination: int, amount: int) -> None:
    page.fill("#transfer-from", str(source))
    page.fill("#transfer-to", str(destination))
    page.fill("#transfer-amount", str(amount))
    page.click("#transfer-form button[type=submit]")


def expect_balances(page: Page, console: dict[str, Any], balances: dict[int, int]) -> None:
    """The table shows these balances, and so does the API."""
    for account, balance in balances.items():
        expect(page.locator(f'#accounts-body tr[data-account-id="{account}"]')).to_have_attribute(
            "data-balance-minor", str(balance)
        )
        assert api_json(console, f"/v1/accounts/{account}")["balance_minor"] == balance


def failed_loads(errors: list[str], statuses: set[int]) -> list[str]:
    """Errors other than Chromium's note on a deliberate 4xx answer."""
    expected = re.compile(
        rf"Failed to load resource: .* status of ({'|'.join(map(str, statuses))})"
    )
    return [error for error in errors if not expected.search(error)]


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "an empty screenshot"
    return path


def test_ledger_console_end_to_end(ledger_console: dict[str, Any], watched: Watched) -> None:
    console = ledger_console
    page = open_console(watched, console)
    assert "api=" not in page.url, "the ?api= parameter is remembered, then dropped"
    assert page.evaluate("localStorage.getItem('console.apiBase')") == console["api"]
    expect(page.locator("#accounts-page")).to_contain_text("Page 1")
    assert watched.errors == [], "the page loads with no console errors"
    show_all_accounts(page)

    ada = open_account(page, "Ada Lovelace", 10_000)
    grace = open_account(page, "Grace Hopper", 0)
    assert shown_balance(page, ada) == 10_000
    assert shown_balance(page, grace) == 0

    transfer(page, ada, grace, 2_500)
    result = page.locator("#transfer-result")
    expect(result).to_contain_text("done")
    match = re.search(r"Transfer #(\d+) done", result.inner_text())
    assert match, result.inner_text()
    transfer_id = int(match[1])
    expect(result).to_contain_text(f"25.00 EUR from account #{ada} to #{grace}")
    expect_balances(page, console, {ada: 7_500, grace: 2_500})

    # The same form, the same key: the API replays its first answer.
    page.click("#transfer-form button[type=submit]")
    expect(result).to_contain_text(f"Replayed transfer #{transfer_id}")
    expect(result).to_contain_text("Idempotent-Replayed: true")
    expect_balances(page, console, {ada: 7_500, grace: 2_500})
    moved = api_json(console, f"/v1/accounts/{grace}/transfers")["items"]
    assert [item["id"] for item in moved] == [transfer_id], "no second transfer"

    page.click(f'button[aria-label="Transfers of account #{grace}"]')
    expect(page.locator("#history-body tr")).to_have_count(1)
    expect(page.locator("#history-body")).to_contain_text(f"#{transfer_id}")

    screenshot(page, "console-ledger.png")  # accounts, the transfer and its replay

    # Invalid transfers show the API's own problem: title and detail.
    for body, status in (
        ({"from_account_id": grace, "to_account_id": ada, "amount_minor": 999_999}, 409),
        ({"from_account_id": ada, "to_account_id": ada, "amount_minor": 1}, 422),
    ):
        page.click("#transfer-new-key")
        transfer(page, body["from_account_id"], body["to_account_id"], body["amount_minor"])
        problem = api_problem(console, body)
        expect(result.locator(".title")).to_have_text(f"{problem['title']} ({status})")
        expect(result.locator(".detail")).to_have_text(problem["detail"])
        expect(result).to_contain_text(f"type {problem['type']}")
    expect_balances(page, console, {ada: 7_500, grace: 2_500})

    bars = page.locator("#latency-chart rect.bar")
    assert bars.count() >= 10, "a bar per request"
    expect(page.locator("#latency-summary")).to_contain_text("median")
    assert page.locator("#latency-chart rect.bar.client-error").count() >= 2
    screenshot(page, "console-ledger-problem.png")
    assert failed_loads(watched.errors, {409, 422}) == []


def test_ledger_console_pages_through_accounts(
    ledger_console: dict[str, Any], watched: Watched
) -> None:
    page = open_console(watched, ledger_console)
    for number in range(6):
        open_account(page, f"Page Owner {number}", 0)
    page.select_option("#accounts-limit", "5")
    expect(page.locator("#accounts-page")).to_contain_text("Page 1")
    expect(page.locator("#accounts-body tr")).to_have_count(5)
    expect(page.locator("#accounts-previous")).to_be_disabled()
    first_page = page.locator("#accounts-body tr").first.get_attribute("data-account-id")
    seen: list[str] = []
    while True:
        seen += page.locator("#accounts-body tr").evaluate_all(
            "rows => rows.map(row => row.dataset.accountId)"
        )
        if page.locator("#accounts-next").is_disabled():
            break
        page.click("#accounts-next")
        expect(page.locator("#accounts-page")).to_contain_text(f"Page {len(seen) // 5 + 1}")
    listed = api_json(ledger_console, "/v1/accounts?limit=100")["items"]
    assert seen == [str(account["id"]) for account in listed]
    page.click("#accounts-previous")
    expect(page.locator("#accounts-page")).to_contain_text(f"Page {(len(seen) - 1) // 5}")
    assert watched.errors == []
    assert first_page == str(listed[0]["id"])


def focusable_controls(page: Page) -> list[str]:
    """Every enabled, visible control on the page, by a stable description."""
    controls: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('a[href], button, input, select, summary')]
            .filter(e => !e.disabled && e.getClientRects().length)
            .map(e => e.id || e.getAttribute('aria-label') || e.textContent.trim())"""
    )
    return controls


def tab_through(page: Page, limit: int = 200) -> list[str]:
    """Press Tab from the top until focus comes back round; what got focus, in order."""
    page.locator("body").click(position={"x": 1, "y": 1})
    reached: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement;
                return e === document.body ? null
                    : e.id || e.getAttribute('aria-label') || e.textContent.trim(); }"""
        )
        if focused is None or (reached and focused == reached[0]):
            break
        reached.append(focused)
    return reached


def keyboard_check(page: Page) -> None:
    reached = tab_through(page)
    assert reached[0] == "Skip to the console", "the skip link comes first"
    assert sorted(reached) == sorted(focusable_controls(page)), "Tab reaches every control"
    assert page.evaluate("document.querySelectorAll('[tabindex]').length") == 0, "no tabindex hacks"


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA rules (contrast, labels, names, landmarks)."""
    page.add_script_tag(path=str(NODE_TOOLS / "node_modules" / "axe-core" / "axe.min.js"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document,
                {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}))
            .violations.map(v => ({id: v.id, nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return found


def test_ledger_console_by_keyboard_alone(ledger_console: dict[str, Any], watched: Watched) -> None:
    page = open_console(watched, ledger_console)
    open_account(page, "Keyboard Row", 100)  # so the table has row buttons to reach
    keyboard_check(page)

    # A whole form, keys only: focus the owner field by tabbing, type, submit with Enter.
    page.locator("body").click(position={"x": 1, "y": 1})
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "account-owner":
            break
    page.keyboard.type("Only Keys")
    page.keyboard.press("Enter")
    expect(page.locator("#account-result")).to_contain_text("Only Keys:")
    assert watched.errors == []


def test_ledger_console_is_accessible_and_responsive(
    ledger_console: dict[str, Any], browser: Browser
) -> None:
    for viewport, name in ((SCREEN, "desktop"), (PHONE, "phone")):
        watched = Watched(browser, viewport)
        try:
            page = open_console(watched, ledger_console)
            expect(page.locator("#accounts-page")).to_contain_text("Page 1")
            assert axe_violations(page) == [], name
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
            if name == "phone":
                screenshot(page, "console-ledger-phone.png")
            assert watched.errors == []
        finally:
            watched.context.close()


def test_console_served_by_vercel_json_reaches_the_api_through_the_rewrite(
    ledger_console: dict[str, Any], watched: Watched
) -> None:
    """Same origin, as on Vercel: no ?api=, the default /api base, the CSP applied."""
    project = ledger_console["project"]
    routes = vercel_routes(project)
    (rewrite,) = json.loads((project / "frontend" / "vercel.json").read_text())["rewrites"]
    placeholder = urlsplit(rewrite["destination"])
    upstream = {f"{placeholder.scheme}://{placeholder.netloc}".lower(): ledger_console["api"]}
    with vercel_host(project / "frontend" / "public", routes, upstream) as origin:
        page = watched.page
        response = page.goto(f"{origin}/")
        assert response is not None
        assert "connect-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator("#ready-state")).to_have_text("ready")
        expect(page.locator("#api-base-effective")).to_have_text(f"Requests go to {origin}/api/…")
        show_all_accounts(page)
        ada = open_account(page, "Vercel Ada", 500)
        grace = open_account(page, "Vercel Grace", 0)
        transfer(page, ada, grace, 200)
        expect(page.locator("#transfer-result")).to_contain_text("done")
        expect_balances(page, ledger_console, {ada: 300, grace: 200})
    assert watched.errors == [], "no CSP violation or failed request"


def test_console_without_the_ledger_shows_only_the_status(
    status_console: dict[str, Any], watched: Watched
) -> None:
    page = open_console(watched, status_console)
    assert page.locator("form").count() == 1, "only the API base form"
    assert page.locator("script[src]").evaluate_all("s => s.map(e => e.getAttribute('src'))") == [
        "js/main.js"
    ]
    bars = page.locator("#latency-chart rect.bar")
    before = bars.count()
    page.click("#status-refresh")
    expect(bars).to_have_count(before + 2)
    keyboard_check(page)
    assert axe_violations(page) == []
    screenshot(page, "console-status.png")
    assert watched.errors == []

    # Pointed at nothing, the status says so instead of failing silently.
    page.fill("#api-base", f"http://127.0.0.1:{free_port()}")
    page.press("#api-base", "Enter")
    expect(page.locator("#ready-state")).to_have_text("no answer")
    expect(page.locator("#status-detail")).to_contain_text("No answer from the API")
    assert answers_ready(status_console["api"]), "the service itself is still ready"


@pytest.fixture(scope="module")
def docs_service(cookies_session: Any) -> Iterator[str]:
    """A rendered service with /docs on (as local.yaml has it); its base URL. Module
    scoped, so it stops (and drops its database) after the browser has closed."""
    docs_on = {"APP_APPLICATION__DOCS_ENABLED": "true"}
    with serve_rendered(cookies_session, {"include_frontend": "no"}, docs_on) as (_, _, base_url):
        yield base_url


def test_the_api_docs_render_with_the_network_off(docs_service: str, browser: Browser) -> None:
    """/docs in Chromium with every request to a host other than 127.0.0.1 refused:
    Swagger UI must come from the service itself."""
    with urllib.request.urlopen(f"{docs_service}/openapi.json", timeout=5) as response:
        schema = json.load(response)
    operations = sum(len(methods) for methods in schema["paths"].values())
    refused: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page = browser.new_page(viewport=SCREEN)
    page.route("**/*", local_only)
    page.goto(f"{docs_service}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() == operations
    expect(page.locator(".info .title")).to_contain_text(schema["info"]["title"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-offline.png"), full_page=True)
    assert refused == []
