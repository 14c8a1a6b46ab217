"""Headless Chromium through Playwright, offline: the one browser launch of the project.

Screenshots (pipelines/screenshots.py) and the browser tests (tests/conftest.py's `browser`
fixture) both start Chromium here, so they see the pages alike. Debian's `chromium` package is
used (`apt-get install chromium`): `playwright install` cannot download browsers on the ward's
network, and Playwright drives a system Chromium through `executable_path`. Playwright is a dev
extra (pyproject.toml): nothing of the monthly batch needs a browser.

Every page is opened offline: `offline_page` aborts every request that is not a file:// URL and
records it, so a page that would fetch something (a CDN script, a font, an image) is seen, not
silently fetched; the switches below keep Chromium itself from phoning home. `app_page` does the
same for the local web app (`mimamori serve`): only requests to its own origin go through.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:   # Playwright is a dev extra: only its types here, the import is in `chromium_browser`
    from playwright.sync_api import Browser, Page, Route

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, no sandbox (root in containers), and nothing of Chromium's own traffic (updates, sync,
# QUIC probes, field trials): the only requests are the page's, and those are blocked.
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def chromium_path() -> str | None:
    """The system Chromium, or None when it is not installed."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def missing_reason() -> str | None:
    """Why a browser cannot be launched here (None: it can): tests skip with this."""
    if chromium_path() is None:
        return "headless Chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401  (a dev extra: present only with `pip install -e '.[dev]'`)
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block (FileNotFoundError when there is none)."""
    reason = missing_reason()
    if reason is not None:
        raise FileNotFoundError(reason)
    # a dev extra, imported only when a browser is wanted
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), headless=True, args=list(ARGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class OfflinePage:
    """A page whose every non-file request was aborted; `blocked` lists the URLs it tried."""

    page: Page
    blocked: list[str] = field(default_factory=list)

    def open(self, path: Path) -> Page:
        """Load a local HTML file: everything it refers to has been loaded or refused (the load event)."""
        self.page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return self.page


@contextmanager
def _guarded_page(browser: Browser, allowed: Callable[[str], bool], width: int, height: int) -> Iterator[OfflinePage]:
    """A fresh page (own context: no cookies or cache shared) whose requests `allowed` refuses are
    aborted and recorded."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1,
                                  locale="ja-JP", service_workers="block")
    offline = OfflinePage(context.new_page())

    def route(route: Route) -> None:
        url = route.request.url
        if allowed(url):
            route.continue_()
        else:
            offline.blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    try:
        yield offline
    finally:
        context.close()


@contextmanager
def offline_page(browser: Browser, width: int = 1280, height: int = 900) -> Iterator[OfflinePage]:
    """A fresh page (own context: no cookies or cache shared) that may read only file:// URLs."""
    with _guarded_page(browser, lambda url: url.startswith("file://"), width, height) as offline:
        yield offline


@contextmanager
def app_page(browser: Browser, origin: str, width: int = 1280, height: int = 900) -> Iterator[OfflinePage]:
    """A fresh page (own context, so its own cookies: one login) that may reach only `origin`,
    e.g. http://127.0.0.1:8123, the local web app; everything else is aborted and recorded."""
    base = origin.rstrip("/") + "/"
    with _guarded_page(browser, lambda url: url.startswith(base) or url == base[:-1], width, height) as offline:
        yield offline
