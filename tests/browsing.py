"""Helpers of the browser tests: the real app served over a copy of the session ward, one account
per role, and a person's steps in headless Chromium (log in through the form, click, submit).

    with live_site(ward, tmp / "ward", browser) as site:
        with site.logged_in("coordinator") as page:
            follow(page, "各月の訪問リスト")
            ...
        site.release()                  # approvals (tests/approving.py) and the coordinator's release
        site.deliver_next_month()       # the next delivery ingested: visits come back as labels

A new role's flow needs only `site.logged_in(role)` and the page's own links and buttons.
Every page is opened by pipelines/browser.py `app_page`, which lets Chromium reach the app alone;
`logged_in` fails the test if a page fetched anything from elsewhere.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd
import pytest

from contract.months import shift
from contract.storage import read_parquet
from pipelines.browser import OfflinePage, app_page
from pipelines.catalog import runs
from pipelines.config import Config, load_config
from pipelines.release import ReleaseRefused, release
from pipelines.web.screenshots import follow, log_in, submit
from pipelines.web.serving import served
from tests.approving import approve_as
from tests.webapp import PASSWORD, Clock, app_for, cheap_hashes

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["ACCOUNTS", "HOME_LINKS", "BASIS", "PURPOSE", "LiveSite", "follow", "live_site", "main_text", "submit"]

BASIS, PURPOSE = "個人情報保護法第69条第2項第2号", "見守り訪問（孤立の予防）"
# role -> the account of that role on every live site (all with tests.webapp.PASSWORD)
ACCOUNTS = {"coordinator": "kato", "approver": "sato", "auditor": "aoki", "analyst": "ito", "custodian": "suzuki"}
# Sources copied from the list month into the next delivery so that it ingests (with the visits
# the app exported beside them), as tests/test_web_pages.py's next-month test does.
NEXT_DELIVERY = ("residents", "checkups", "care_premiums")
# role -> links its home page must offer (href); a role's new pages add theirs here, and the
# login test clicks every link a home page has, listed or not
HOME_LINKS: dict[str, tuple[str, ...]] = {"coordinator": ("/coord",), "auditor": ("/audit", "/audit/log")}


def main_text(page: "Page") -> str:
    """What the page shows below its header (the header names the account on every page)."""
    return page.locator("main").inner_text()


@dataclass
class LiveSite:
    """The app served for real over its own copy of the session ward."""
    cfg: Config
    month: str
    app: object
    clock: Clock               # the app's time: move it to expire a session
    url: str                   # e.g. http://127.0.0.1:41234
    browser: "Browser"
    listed: pd.DataFrame       # the month's list (pid, rank, district, …)

    def at(self, path: str) -> str:
        return self.url + path

    @contextmanager
    def page(self, width: int = 1280, height: int = 900) -> Iterator[OfflinePage]:
        """A fresh browser context (no cookies: nobody logged in) on the app alone; fails the
        test if any page in it fetched from elsewhere."""
        with app_page(self.browser, self.url, width, height) as guarded:
            yield guarded
        assert not guarded.blocked, f"the app's pages fetched from elsewhere: {guarded.blocked[:3]}"

    @contextmanager
    def logged_in(self, role: str, **size) -> Iterator["Page"]:
        """A page logged in through the login form as the site's account of `role`, on its home page."""
        with self.page(**size) as guarded:
            response = log_in(guarded.page, self.url, ACCOUNTS[role], PASSWORD)
            assert response is not None and response.ok and guarded.page.url == self.at("/"), main_text(guarded.page)
            yield guarded.page

    def district(self, smallest: int = 1) -> str:
        counts = self.listed["district"].value_counts()
        return sorted(counts[counts >= smallest].index)[0]

    def people(self, district: str) -> pd.DataFrame:
        return self.listed[self.listed["district"] == district].sort_values("rank")

    def release(self) -> None:
        """Two approvals (tests/approving.py) and the coordinator's release of the month, through the library."""
        for approver in ("A", "B", "C"):   # the session ward may carry an approval already
            try:
                approve_as(self.cfg, self.month, approver, BASIS, PURPOSE)
            except ReleaseRefused as refused:
                if "already approved" not in str(refused):
                    raise
        release(self.cfg, self.month, "coordinator")

    def deliver_next_month(self) -> str:
        """The next month's delivery ingested into the lake (its outreach_outcomes.csv is what the
        app exported); returns that month."""
        from pipelines.ingest import ingest_month   # imported here: only the flows that ingest need it
        from pipelines.pseudonymise import load_key

        nxt = shift(self.month, 1)
        (self.cfg.inbox / nxt).mkdir(parents=True, exist_ok=True)
        for source in NEXT_DELIVERY:
            shutil.copy(self.cfg.inbox / self.month / f"{source}.csv", self.cfg.inbox / nxt / f"{source}.csv")
        ingest_month(self.cfg, nxt, load_key(self.cfg.key_file))
        return nxt


@contextmanager
def live_site(ward, root: Path, browser: "Browser") -> Iterator[LiveSite]:
    """Serve the app over a copy of `ward` at `root` (not released: the coordinator sees
    pseudonyms until `release()`), one account per role with cheap argon2 hashes."""
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap_hashes(monkeypatch)
        clock = Clock()
        app = app_for(cfg, clock, {name: role for role, name in ACCOUNTS.items()})
        try:
            with served(app) as url:
                yield LiveSite(cfg, ward.month, app, clock, url, browser, read_parquet(runs.list_file(cfg, ward.month)))
        finally:
            app.state.engine.dispose()
