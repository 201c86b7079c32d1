"""The test console (include_frontend=yes) under test: served by the project's own
`make console` beside the rendered service, and what a test does on its page in
Chromium (open accounts, transfer, read balances, tab through, run axe-core)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect

from .node_tools import NODE_TOOLS
from .paths import TEMPLATE
from .polling import wait_until_answering
from .ports import free_port
from .service import serve_rendered

ARTIFACTS = TEMPLATE / "test-artifacts"
# Generous functional bound for anything the page does after a click, for actions
# and assertions alike (the machine may be busy with other tests).
UI_TIMEOUT_MS = 30_000
expect.set_options(timeout=UI_TIMEOUT_MS)
SCREEN = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=375, height=800)
CONSOLE_START_SECONDS = 30


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
        wait_until_answering(
            f"{origin}/index.html",
            CONSOLE_START_SECONDS,
            "make console serving the page",
            process=console,
            output=log.read_text,
        )
        yield origin
    finally:
        os.killpg(console.pid, signal.SIGTERM)
        console.wait(timeout=30)


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
