"""Screenshots of the web app's main pages for docs/, shot through the real app in headless Chromium.

    python -m pipelines.web.screenshots --month YYYY-MM [OUT_DIR (docs/)]

Paths come from the configuration, as for `mimamori serve` (MIMAMORI_* or mimamori.toml). The app
is served on 127.0.0.1 (pipelines/web/serving.py) over a throwaway account database in a
temporary folder, so the ward's own app database gains no accounts; a coordinator and an auditor
log in through the login form, as a person would. Chromium is the project's one launch
(pipelines/browser.py) and may reach only the app: a page that fetched anything else is refused.

docs/ holds no personal data: the coordinator's pages are shot only for a month whose list is
not released (pseudonyms, no names or addresses), and the auditor's pages never show a name.
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
from pipelines.release import released_sheet
from pipelines.web.accounts import add_user
from pipelines.web.app import create_app
from pipelines.web.serving import served

if TYPE_CHECKING:   # Playwright is a dev extra: only its types here
    from playwright.sync_api import Browser, Locator, Page, Response

# role -> the account the screenshots log in with (only in the throwaway database)
SCREEN_ACCOUNTS = {"coordinator": "coordinator-demo", "auditor": "auditor-demo"}
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


def shoot_app(browser: "Browser", cfg: Config, month: str, out: Path) -> list[Path]:
    """PNGs of the login form, the coordinator's district list and one district's page (before
    release: pseudonymous), the auditor's months, one explanation and the audit log, into `out`."""
    if runs.completed_run(cfg, month) is None:
        raise ScreenshotRefused(f"the {month} run is not complete under {cfg.work}")
    if released_sheet(cfg, month) is not None:
        raise ScreenshotRefused(f"the {month} list is released, so its district page shows names: "
                                "shoot a month before its release (docs/ holds no personal data)")
    listed = read_parquet(runs.list_file(cfg, month), columns=["pid", "rank", "district"]).sort_values("rank")
    top = listed.iloc[0]
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(cfg, database=f"sqlite:///{Path(tmp) / 'screenshots.db'}")
        passwords = {role: secrets.token_urlsafe(18) for role in SCREEN_ACCOUNTS}
        with app.state.sessions() as db:
            for role, name in SCREEN_ACCOUNTS.items():
                add_user(db, name, role, passwords[role])
        with served(app) as base:
            with app_page(browser, base) as guarded:
                page = guarded.page
                page.goto(f"{base}/login", wait_until="load")
                shots.append(_shoot(page, out / "web_login.png", 520))
                log_in(page, base, SCREEN_ACCOUNTS["coordinator"], passwords["coordinator"])
                page.goto(f"{base}/coord/months/{month}", wait_until="load")
                shots.append(_shoot(page, out / "web_coordinator_districts.png", 900))
                page.goto(f"{base}/coord/months/{month}/districts/{quote(str(top['district']), safe='')}", wait_until="load")
                if "公開前" not in page.locator("main").inner_text():   # the app itself says pseudonymous
                    raise ScreenshotRefused(f"the {month} district page is not the pseudonymous one")
                shots.append(_shoot(page, out / "web_coordinator_district.png", 900))
            with app_page(browser, base) as guarded_auditor:
                page = guarded_auditor.page
                log_in(page, base, SCREEN_ACCOUNTS["auditor"], passwords["auditor"])
                page.goto(f"{base}/audit", wait_until="load")
                shots.append(_shoot(page, out / "web_auditor_months.png", 700))
                page.goto(f"{base}/audit/months/{month}/explain/{top['pid']}", wait_until="load")
                shots.append(_shoot(page, out / "web_auditor_explain.png", 1300))
                page.goto(f"{base}/audit/log", wait_until="load")
                shots.append(_shoot(page, out / "web_audit_log.png", 700))
            blocked = guarded.blocked + guarded_auditor.blocked
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
