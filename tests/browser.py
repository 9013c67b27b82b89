"""Headless Chromium (Debian's `chromium`) driven by Playwright, for pages and embeds.

Every page is loaded with a record of console errors and of every request it makes, so a test
can assert that nothing failed and nothing left the server. Screenshots go to `artifacts/`.
Without Chromium the browser tests are skipped locally and fail on CI (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageVisit:
    url: str
    status: int | None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    text: str = ""
    screenshot: Path | None = None

    def outside_requests(self, base_url: str) -> list[str]:
        ours = urlsplit(base_url).netloc
        return [
            u for u in self.requests if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != ours
        ]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def visit(browser: Any, url: str, *, width: int, name: str, height: int = 900) -> PageVisit:
    """Load `url` at `width` px, wait for the network to settle, keep a screenshot."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    result = PageVisit(url=url, status=None)
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.console_errors.append(str(e)))
    page.on("request", lambda r: result.requests.append(r.url))
    page.on("requestfailed", lambda r: result.failed_requests.append(f"{r.url}: {r.failure}"))
    try:
        response = page.goto(url, wait_until="networkidle", timeout=20_000)
        result.status = response.status if response else None
        result.text = page.inner_text("body")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        result.screenshot = ARTIFACTS / f"{name}-{width}.png"
        page.screenshot(path=str(result.screenshot), full_page=True)
    finally:
        context.close()
    return result
