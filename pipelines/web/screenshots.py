"""Screenshots of the web app's main pages for docs/, shot through the real app in headless Chromium.

    python -m pipelines.web.screenshots --month YYYY-MM [OUT_DIR (docs/)]

Paths come from the configuration, as for `mimamori serve` (MIMAMORI_* or mimamori.toml). The app
is served on 127.0.0.1 (pipelines/web/serving.py) over a throwaway account database in a
temporary folder, so the ward's own app database gains no accounts; a coordinator, an approver,
an analyst, a custodian and an auditor log in through the login form, as a person would. Nothing
is submitted: no review, approval, release or look-up is made, and nothing is written to the
audit log (the coordinator's pages log views only after a release, which is refused here).
Chromium is the project's one launch (pipelines/browser.py) and may reach only the app: a page
that fetched anything else is refused.

docs/ holds no personal data: the coordinator's pages (the district page and its print view) and
the approver's month page are shot only for a month whose list is not released (pseudonyms, no
names or addresses); the auditor's, analyst's and custodian's pages never show a name.
Use a synthetic ward all the same.

The browser primitives here (`log_in`, `follow`, `submit`) are also what the browser tests
(tests/browsing.py) drive the app with.
"""
from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from contract.storage import read_parquet
from pipelines.browser import app_page, chromium_browser
from pipelines.catalog import runs
from pipelines.config import Config, load_config
from pipelines.approvers import registered
from pipelines.release import released_sheet
from pipelines.web.accounts import add_user
from pipelines.web.decisions import link_approver
from pipelines.web.app import create_app
from pipelines.web.serving import served

if TYPE_CHECKING:   # Playwright is a dev extra: only its types here
    from playwright.sync_api import Browser, Locator, Page, Response

# role -> the account the screenshots log in with (only in the throwaway database)
SCREEN_ACCOUNTS = {"coordinator": "coordinator-demo", "approver": "approver-demo", "analyst": "analyst-demo",
                   "custodian": "custodian-demo", "auditor": "auditor-demo"}
# the PNGs, in the order they are shot
SHOTS = ("web_login.png", "web_coordinator_districts.png", "web_coordinator_district.png", "web_coordinator_print.png",
         "web_approver_month.png", "web_analyst_trends.png", "web_custodian_lookups.png",
         "web_auditor_months.png", "web_auditor_explain.png", "web_audit_log.png")
WIDTH = 1280


class ScreenshotRefused(RuntimeError):
    """A page cannot go into docs/ (it would show names, or it fetched from elsewhere)."""


def submit(page: "Page", control: "Locator") -> "Response | None":
    """Click a button (or link) that loads a new page; the page's final response (after redirects)."""
    with page.expect_navigation(wait_until="load") as navigation:
        control.click()
    return navigation.value


def follow(page: "Page", name: str, exact: bool = False) -> "Response | None":
    """Click the link whose text is `name` (the first, if several) and wait for its page."""
    return submit(page, page.get_by_role("link", name=name, exact=exact).first)


def log_in(page: "Page", base_url: str, name: str, password: str) -> "Response | None":
    """Open the login form, type the name and password, press ログイン; the page it lands on."""
    page.goto(f"{base_url}/login", wait_until="load")
    page.get_by_label("名前").fill(name)
    page.get_by_label("パスワード").fill(password)
    return submit(page, page.get_by_role("button", name="ログイン"))


def _shoot(page: "Page", out: Path, height: int) -> Path:
    page.set_viewport_size({"width": WIDTH, "height": height})
    page.screenshot(path=str(out), full_page=False)
    return out


def _pseudonymous(page: "Page", what: str, month: str) -> None:
    """Refuse a coordinator's page that does not itself say it is the unreleased, pseudonymous one."""
    if "公開前" not in page.locator("body").inner_text():
        raise ScreenshotRefused(f"the {month} {what} is not the pseudonymous one")


def shoot_app(browser: "Browser", cfg: Config, month: str, out: Path) -> list[Path]:
    """PNGs of the login form; the coordinator's district list, one district's page and its print
    view (before release: pseudonymous); the approver's month page (before approval); the
    analyst's trends; the custodian's look-up requests; the auditor's months, one explanation and
    the audit log, into `out` (names as in SHOTS)."""
    if runs.completed_run(cfg, month) is None:
        raise ScreenshotRefused(f"the {month} run is not complete under {cfg.work}")
    if released_sheet(cfg, month) is not None:
        raise ScreenshotRefused(f"the {month} list is released, so its district page shows names: "
                                "shoot a month before its release (docs/ holds no personal data)")
    listed = read_parquet(runs.list_file(cfg, month), columns=["pid", "rank", "district"]).sort_values("rank")
    top = listed.iloc[0]
    district = quote(str(top["district"]), safe="")
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    blocked: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(cfg, database=f"sqlite:///{Path(tmp) / 'screenshots.db'}")
        passwords = {role: secrets.token_urlsafe(18) for role in SCREEN_ACCOUNTS}
        with app.state.sessions() as db:
            for role, name in SCREEN_ACCOUNTS.items():
                add_user(db, name, role, passwords[role])
            # the approver's page as a registered approver sees it (the approval form); the
            # account only shows the page and signs nothing
            identities = [a["id"] for a in registered(cfg) if not a.get("revoked")]
            if identities:
                link_approver(db, SCREEN_ACCOUNTS["approver"], identities[0])

        # role (None: nobody logged in) -> its pages: (path, PNG, height, must it say it is pseudonymous)
        plan = {None: [("/login", "web_login.png", 520, False)],
                "coordinator": [(f"/coord/months/{month}", "web_coordinator_districts.png", 900, False),
                                (f"/coord/months/{month}/districts/{district}", "web_coordinator_district.png", 900, True),
                                (f"/coord/months/{month}/districts/{district}/print", "web_coordinator_print.png", 420, True)],
                "approver": [(f"/approver/months/{month}", "web_approver_month.png", 1300, False)],
                "analyst": [("/analyst/trends", "web_analyst_trends.png", 1300, False)],
                "custodian": [("/custodian", "web_custodian_lookups.png", 700, False)],
                "auditor": [("/audit", "web_auditor_months.png", 700, False),
                            (f"/audit/months/{month}/explain/{top['pid']}", "web_auditor_explain.png", 1300, False),
                            ("/audit/log", "web_audit_log.png", 700, False)]}
        with served(app) as base:
            for role, pages in plan.items():
                with app_page(browser, base) as guarded:   # each role its own context: its own cookies
                    page = guarded.page
                    if role is not None:
                        log_in(page, base, SCREEN_ACCOUNTS[role], passwords[role])
                    for path, name, height, pseudonymous in pages:
                        page.goto(base + path, wait_until="load")
                        if pseudonymous:
                            _pseudonymous(page, name, month)
                        shots.append(_shoot(page, out / name, height))
                blocked += guarded.blocked
        app.state.engine.dispose()
    if blocked:
        raise ScreenshotRefused(f"the app's pages tried to fetch {len(blocked)} resource(s) from elsewhere, "
                                f"e.g. {blocked[0]}")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs"))
    parser.add_argument("--month", required=True)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    try:
        with chromium_browser() as browser:
            for path in shoot_app(browser, cfg, args.month, args.out):
                print(path)
    except ScreenshotRefused as refused:
        print(f"screenshots refused: {refused}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
