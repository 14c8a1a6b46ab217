"""Helpers of the browser tests: the real app served over a copy of the session ward, one account
per role, and a person's steps in headless Chromium (log in through the form, click, submit).

    with live_site(ward, tmp / "ward", browser) as site:
        with site.logged_in("coordinator") as page:
            follow(page, "各月の訪問リスト")
            ...
        with site.logged_in("approver", account=APPROVERS["B"]) as page:   # the second approver
            page.locator('input[name="key_file"]').set_input_files(site.key_file("B"))
            ...
        site.deliver_next_month()       # the next delivery ingested: visits come back as labels

A new role's flow needs only `site.logged_in(role)` and the page's own links and buttons. The two
approver accounts are linked to the registered approver identities A and B (tests/approving.py),
whose private key files sit beside the custody zone for the approvers' upload fields.
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
from contract.sources import SOURCES
from contract.storage import read_parquet
from pipelines.browser import OfflinePage, app_page
from pipelines.catalog import runs
from pipelines.config import Config, load_config
from pipelines.pseudonymise import load_key, pseudonymise
from pipelines.reading import delivery_file, read_source
from pipelines.web.decisions import link_approver
from pipelines.web.screenshots import follow, log_in, submit
from pipelines.review import review_file
from pipelines.web.serving import served
from tests.approving import key_file, registered_approver
from tests.webapp import PASSWORD, Clock, app_for, cheap_hashes

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["ACCOUNTS", "APPROVERS", "HOME_LINKS", "LiveSite", "follow", "live_site", "main_text", "submit"]

# role -> the account of that role on every live site (all with tests.webapp.PASSWORD)
ACCOUNTS = {"coordinator": "kato", "approver": "sato", "auditor": "aoki", "analyst": "ito", "custodian": "suzuki"}
# registered approver identity (tests/approving.py) -> its approver account: two people, so a
# release needs both (the first is ACCOUNTS["approver"])
APPROVERS = {"A": "sato", "B": "takahashi"}
# Sources copied from the list month into the next delivery so that it ingests (with the visits
# the app exported beside them), as tests/test_web_pages.py's next-month test does.
NEXT_DELIVERY = ("residents", "checkups", "care_premiums")
# role -> links its home page must offer (href); a role's new pages add theirs here, and the
# login test clicks every link a home page has, listed or not
HOME_LINKS: dict[str, tuple[str, ...]] = {
    "coordinator": ("/coord",), "approver": ("/approver",), "analyst": ("/analyst", "/analyst/trends"),
    "custodian": ("/custodian", "/custodian/accounts", "/custodian/releases"),
    "auditor": ("/audit", "/audit/log", "/audit/lookups")}


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
    def logged_in(self, role: str, account: str | None = None, **size) -> Iterator["Page"]:
        """A page logged in through the login form as the site's account of `role` (or `account`,
        e.g. the second approver), on its home page."""
        with self.page(**size) as guarded:
            response = log_in(guarded.page, self.url, account or ACCOUNTS[role], PASSWORD)
            assert response is not None and response.ok and guarded.page.url == self.at("/"), main_text(guarded.page)
            yield guarded.page

    def district(self, smallest: int = 1) -> str:
        counts = self.listed["district"].value_counts()
        return sorted(counts[counts >= smallest].index)[0]

    def people(self, district: str) -> pd.DataFrame:
        return self.listed[self.listed["district"] == district].sort_values("rank")

    def key_file(self, ident: str) -> Path:
        """The private key file of the registered approver `ident`, as its owner keeps it."""
        return key_file(self.cfg, ident)

    def residents(self) -> pd.DataFrame:
        """The month's residents extract as delivered (宛名番号, name, …) with each one's pid:
        what a coordinator or an auditor knows of a person, and what the lake knows them by."""
        rows = read_source(delivery_file(self.cfg.inbox / self.month, "residents"), SOURCES["residents"],
                           delivery_month=self.month).rows
        return rows.assign(pid=pseudonymise(rows["resident_id"], load_key(self.cfg.key_file), "resident"))

    def unlisted_resident(self, district: str) -> pd.Series:
        """A resident of `district` (by the month's features) who is not on the month's list."""
        features = read_parquet(runs.features_file(self.cfg, self.month), columns=["pid", "district"])
        here = set(features.loc[features["district"] == district, "pid"]) - set(self.listed["pid"])
        residents = self.residents()
        return residents[residents["pid"].isin(here)].sort_values("resident_id").iloc[0]

    def deliver_next_month(self) -> str:
        """The next month's delivery ingested into the lake (its outreach_outcomes.csv is what the
        app exported); returns that month."""
        from pipelines.ingest import ingest_month   # imported here: only the flows that ingest need it

        nxt = shift(self.month, 1)
        (self.cfg.inbox / nxt).mkdir(parents=True, exist_ok=True)
        for source in NEXT_DELIVERY:
            shutil.copy(self.cfg.inbox / self.month / f"{source}.csv", self.cfg.inbox / nxt / f"{source}.csv")
        ingest_month(self.cfg, nxt, load_key(self.cfg.key_file))
        return nxt


@contextmanager
def live_site(ward, root: Path, browser: "Browser") -> Iterator[LiveSite]:
    """Serve the app over a copy of `ward` at `root`, not released (the coordinator sees
    pseudonyms until the approvers release it), one account per role with cheap argon2 hashes
    and a second approver account, the two linked to the registered approvers A and B."""
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    # the session ward is shared: whatever a test did to its month before, this copy starts unreviewed,
    # unapproved and unreleased
    shutil.rmtree(cfg.releases_dir / ward.month, ignore_errors=True)
    (cfg.approvals_dir / f"{ward.month}.jsonl").unlink(missing_ok=True)
    review_file(cfg, ward.month).unlink(missing_ok=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap_hashes(monkeypatch)
        clock = Clock()
        app = app_for(cfg, clock, {**{name: role for role, name in ACCOUNTS.items()},
                                   **{name: "approver" for name in APPROVERS.values()}})
        with app.state.sessions() as db:
            for ident, name in APPROVERS.items():
                registered_approver(cfg, ident)
                link_approver(db, name, ident)
        try:
            with served(app) as url:
                yield LiveSite(cfg, ward.month, app, clock, url, browser, read_parquet(runs.list_file(cfg, ward.month)))
        finally:
            app.state.engine.dispose()
