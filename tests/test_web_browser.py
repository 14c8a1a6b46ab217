"""The web app in headless Chromium, served for real (uvicorn on 127.0.0.1) over a copy of the
session ward: a person's steps through the login form, links and buttons, never the API.

Each role logs in to its own home page and out; the auditor reads a month's report, a model card,
an explanation with its waterfall and the verified audit log; a coordinator sees a pseudonymous
district list before release and names after it, records a visit through the form, finds it on
the person's history, and after the next delivery is ingested finds it delivered as a label; a
form from an earlier login and an expired session end on the error page; the app's screenshots
are shot (into a temporary folder, never docs/). Skips only without Chromium or Playwright.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from PIL import Image, ImageStat

from pipelines import audit
from pipelines.browser import app_page
from pipelines.catalog import runs
from pipelines.catalog.lake import outcomes_known_at
from pipelines.explain import person_of
from pipelines.release import released_sheet
from pipelines.web.roles import ROLES
from pipelines.web.screenshots import ScreenshotRefused, log_in, shoot_app
from tests.browsing import ACCOUNTS, HOME_LINKS, follow, live_site, main_text, submit
from tests.webapp import PASSWORD


@pytest.fixture(scope="module")
def live(ward, browser, tmp_path_factory):
    """The app served over the session ward's copy, not released; shared by the tests that change nothing."""
    with live_site(ward, tmp_path_factory.mktemp("browser") / "ward", browser) as site:
        yield site


def _error(page) -> str:
    return page.locator("p.error").inner_text()


def _section(page, heading: str) -> str:
    """The text of a page's section, from its heading (h2) to the next one."""
    text = main_text(page)
    start = text.index(heading) + len(heading)
    following = [text.index(h, start) for h in page.locator("h2").all_inner_texts() if h in text[start:]]
    return text[start:min(following, default=len(text))].split("\n", 1)[-1].strip()


# --- logging in and out ----------------------------------------------------------------------

@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_logs_in_to_its_own_home_page_whose_links_open_and_logs_out(live, role):
    with live.logged_in(role) as page:
        assert f"ようこそ、{ACCOUNTS[role]} さん" in main_text(page) and ROLES[role][0] in main_text(page)
        assert f"{ACCOUNTS[role]}（{ROLES[role][0]}）" in page.locator("header").inner_text()
        links = [a.get_attribute("href") for a in page.locator("main a").all()]
        assert set(HOME_LINKS.get(role, ())) <= set(links), links
        for href in links:   # every link of the home page opens a page of this role, not an error
            response = submit(page, page.locator(f'main a[href="{href}"]'))
            assert response.ok and not page.locator("p.error").count(), (href, main_text(page))
            page.go_back(wait_until="load")
        if role != "auditor":   # another role's page is refused, saying why
            response = page.goto(live.at("/audit"), wait_until="load")
            assert response.status == 403 and "役割では開けません" in _error(page)
            page.go_back(wait_until="load")
        submit(page, page.get_by_role("button", name="ログアウト"))
        assert page.url == live.at("/login") and page.get_by_label("パスワード").is_visible()
        page.goto(live.at("/"), wait_until="load")   # logged out: the home page sends back to the form
        assert page.url == live.at("/login")


def test_a_wrong_password_stays_on_the_form_with_the_reason(live):
    with live.page() as guarded:
        response = log_in(guarded.page, live.url, ACCOUNTS["auditor"], PASSWORD + "x")
        assert response.status == 401 and guarded.page.url == live.at("/login")
        assert "名前またはパスワードが違います" in _error(guarded.page)


def test_the_browser_reaches_the_app_and_nothing_else(live):
    from playwright.sync_api import Error   # a dev extra: `live` has skipped already where it is missing

    port = int(live.url.rsplit(":", 1)[1])
    elsewhere = [f"http://127.0.0.1:{port + 1}/", f"http://localhost:{port}/", "http://example.org/"]
    with app_page(live.browser, live.url) as guarded:   # not live.page(): here requests are meant to be blocked
        assert guarded.page.goto(live.at("/login")).ok
        for url in elsewhere:
            with pytest.raises(Error, match="ERR_INTERNET_DISCONNECTED"):
                guarded.page.goto(url)
    assert guarded.blocked == elsewhere


# --- the auditor -----------------------------------------------------------------------------

def test_the_auditor_reads_the_report_a_card_an_explanation_and_the_verified_log(live):
    month, cfg = live.month, live.cfg
    with live.logged_in("auditor") as page:
        follow(page, "各月のレポート")
        row = page.locator("tr", has_text=month)
        report = submit(page, row.get_by_role("link", name="レポート"))
        assert report.ok and report.body() == runs.report_file(cfg, month).read_bytes()   # the batch's own file
        assert page.title()
        page.go_back(wait_until="load")

        version = runs.card_versions(cfg)[-1]
        card = submit(page, page.get_by_role("link", name=f"v{version}", exact=True))
        assert card.ok and card.body() == runs.card_paths(cfg, version)[1].read_bytes()
        page.go_back(wait_until="load")

        follow(page, "リストと説明")
        assert page.url == live.at(f"/audit/months/{month}/list")
        pid = live.listed.sort_values("rank")["pid"].iloc[0]
        follow(page, pid, exact=True)
        view = person_of(cfg, month, pid)
        assert page.locator("pre").text_content() == view.text
        assert view.waterfall is not None, "the session ward's list is the model's: every person has a waterfall"
        chart = page.get_by_role("img", name="SHAP waterfall")
        assert chart.is_visible() and chart.evaluate("img => img.naturalWidth") > 200   # a decoded PNG, not a broken icon

        submit(page, page.locator("header").get_by_role("link", name="ホーム"))
        follow(page, "監査ログと検証結果")
        assert "chain intact" in page.locator("p.ok").inner_text()
        assert "FAILED" not in main_text(page) and page.locator("table tr").count() > 1


# --- sessions and forms ----------------------------------------------------------------------

def test_a_form_from_an_earlier_login_and_an_expired_session_end_on_the_error_page(live):
    with live.page() as guarded:
        earlier = guarded.page
        log_in(earlier, live.url, ACCOUNTS["coordinator"], PASSWORD)
        # logging in again in another tab replaces the session cookie: the first tab's form
        # still carries the first session's CSRF token
        again = earlier.context.new_page()
        log_in(again, live.url, ACCOUNTS["coordinator"], PASSWORD)
        refused = submit(earlier, earlier.get_by_role("button", name="ログアウト"))
        assert refused.status == 403 and "CSRF" in _error(earlier)
        again.reload(wait_until="load")
        assert again.url == live.at("/") and "ようこそ" in main_text(again)   # the refused form changed nothing

        live.clock.advance(minutes=live.app.state.limits.idle.seconds // 60 + 1)   # left unused too long
        expired = submit(again, again.get_by_role("button", name="ログアウト"))
        assert expired.status == 401 and "有効期限が切れました" in _error(again)
        follow(again, "ホームへ戻る")
        assert again.url == live.at("/login")


# --- the coordinator: before and after release, a visit, and its label -----------------------

def test_a_visit_recorded_in_the_browser_comes_back_as_the_next_months_label(ward, browser, tmp_path):
    with live_site(ward, tmp_path / "ward", browser) as site:
        month, cfg = site.month, site.cfg
        district = site.district()
        people = site.people(district)
        pid = people["pid"].iloc[0]
        with site.logged_in("coordinator") as page:
            follow(page, "各月の訪問リスト")
            assert "公開前" in page.locator("tr", has_text=month).inner_text()
            follow(page, month, exact=True)
            follow(page, district, exact=True)
            before = main_text(page)
            assert "公開前" in before and all(p[:12] in before for p in people["pid"])
            assert not page.locator('input[name="visit_date"]').count()   # nobody visits a pseudonym

            site.release()
            sheet = released_sheet(cfg, month)[1]
            assert not [name for name in sheet["name"] if name in before]
            logged = len(audit.entries(cfg.audit_log))
            page.reload(wait_until="load")
            shown = main_text(page)
            assert all(name in shown for name in sheet.loc[sheet["district"] == district, "name"])
            assert [(e["event"], e["account"], e["district"]) for e in audit.entries(cfg.audit_log)[logged:]] == [
                ("web_view", ACCOUNTS["coordinator"], district)]

            row = page.locator("tr", has=page.locator(f'a[href="/coord/months/{month}/people/{pid}"]'))
            row.get_by_label("訪問日").fill("2026-11-05")
            row.get_by_label("訪問結果").select_option(label="要支援")
            saved = submit(page, row.get_by_role("button", name="記録"))
            assert saved.ok and page.url == site.at(f"/coord/months/{month}/districts/{quote(district, safe='')}")
            assert "2026-11-05 要支援" in row.inner_text()

            submit(page, row.get_by_role("link", name="これまでの訪問"))
            entered = _section(page, "このアプリで記録した訪問")
            assert "2026-11-05" in entered and "要支援" in entered and ACCOUNTS["coordinator"] in entered
            assert _section(page, "提供済みの訪問結果").split() == ["なし", "none"]   # not delivered yet

            nxt = site.deliver_next_month()
            known = outcomes_known_at(cfg.lake, nxt).visits
            mine = known[known["pid"] == pid]
            assert list(mine["outcome"]) == ["needs_support"]
            assert [str(d)[:10] for d in mine["visit_date"]] == ["2026-11-05"]
            page.reload(wait_until="load")
            delivered = _section(page, "提供済みの訪問結果")
            assert "2026-11-05" in delivered and "要支援" in delivered   # the batch has it as a label now
        with pytest.raises(ScreenshotRefused, match="released"):   # docs/ never gets a page with names
            shoot_app(browser, cfg, month, tmp_path / "shots")
        assert not (tmp_path / "shots").exists()
        assert not audit.verify(cfg.audit_log)


# --- screenshots -------------------------------------------------------------------------------

def test_the_app_screenshots_are_shot_through_the_app_and_show_something(live, browser, tmp_path):
    shots = shoot_app(browser, live.cfg, live.month, tmp_path)
    assert [p.name for p in shots] == ["web_login.png", "web_coordinator_districts.png", "web_coordinator_district.png",
                                       "web_auditor_months.png", "web_auditor_explain.png", "web_audit_log.png"]
    for path in shots:
        image = Image.open(path).convert("L")
        assert image.width == 1280 and image.height >= 500
        assert ImageStat.Stat(image).stddev[0] > 10, f"{path.name} is nearly blank"
        assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16, f"{path.name} has almost no detail"
    with live.app.state.sessions() as db:   # the screenshots' accounts went into a throwaway database
        from pipelines.web.db import User
        assert sorted(u.name for u in db.query(User).all()) == sorted(ACCOUNTS.values())
