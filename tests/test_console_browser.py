"""The test console in a real Chromium (Debian's, driven by Playwright) against the
rendered service on PostgreSQL, served both as `make console` serves it (another
origin: CORS) and as vercel.json serves it (same origin, /api rewritten to the API,
its security headers applied). Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from .support.browser import launched
from .support.console_page import (
    ARTIFACTS,
    PHONE,
    SCREEN,
    Watched,
    api_json,
    api_problem,
    axe_violations,
    console_for,
    expect_balances,
    failed_loads,
    keyboard_check,
    open_account,
    open_console,
    screenshot,
    show_all_accounts,
    shown_balance,
    transfer,
)
from .support.node_tools import vercel_routes
from .support.polling import answers_200
from .support.ports import free_port
from .support.service import serve_rendered
from .support.vercel_host import vercel_host

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One per test: Playwright's sync API holds an event loop while it runs, and the
    module's fixtures need asyncio.run to drop their databases at the end."""
    with launched() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def ledger_console(cookies_session: Any) -> Iterator[dict[str, Any]]:
    with console_for(cookies_session, {}) as console:
        yield console


@pytest.fixture(scope="module")
def status_console(cookies_session: Any) -> Iterator[dict[str, Any]]:
    with console_for(cookies_session, {"example_domain": "none"}) as console:
        yield console


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    page = Watched(browser)
    try:
        yield page
    finally:
        page.context.close()


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
    assert answers_200(f"{status_console['api']}/health/ready"), "the service itself is still ready"


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
