"""Debian's Chromium driven by Playwright (never `playwright install`: no downloads)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

from .node_tools import INSTALL_HINT

# Without the background-networking flags Chromium keeps calling hosts the closed
# network refuses; no sandbox, as the suite runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, f"chromium not found on PATH; {INSTALL_HINT}"
    return path


@contextmanager
def launched() -> Iterator[Browser]:
    """A headless Chromium, closed afterwards. Playwright's sync API holds an event
    loop while it runs: no asyncio.run inside."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
