"""The web app in headless Chromium, served for real (uvicorn on 127.0.0.1) over a copy of the
session ward: a person's steps through the login form, links and buttons, never the API.

Each role logs in to its own home page and out; the auditor reads a month's report, a model card,
an explanation with its waterfall and the verified audit log, and asks about a person by 宛名番号,
which a custodian approves in another browser, ending on that person's explanation; the analyst's
trends page draws its charts. A coordinator reviews a pseudonymous district list (skips a person
with a reason, adds one by 宛名番号) and submits it; two approvers, each with their own key file,
see the review, approve and release it; the coordinator then sees names (the added person's, not
the skipped one's), records a visit through the form, finds it on the person's history, and after
the next delivery is ingested finds it delivered as a label. A form from an earlier login and an
expired session end on the error page; the app's screenshots are shot (into a temporary folder,
never docs/). Skips only without Chromium or Playwright.
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
from pipelines.release import approvals, released_sheet
from pipelines.review import submitted_review
from pipelines.web.roles import ROLES
from pipelines.web.screenshots import SHOTS, ScreenshotRefused, log_in, shoot_app
from tests.browsing import ACCOUNTS, APPROVERS, HOME_LINKS, follow, live_site, main_text, submit
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


# --- the analyst ------------------------------------------------------------------------------

def test_the_analysts_trends_page_draws_its_charts(live):
    with live.logged_in("analyst") as page:
        follow(page, "月ごとの推移")
        charts = page.locator("figure svg.chart")
        assert charts.count() == 5
        for chart in charts.all():   # each drawn where a person sees it, at its size
            box = chart.bounding_box()
            assert chart.is_visible() and box["width"] >= 700 and box["height"] >= 290, box
        listed = page.locator("figure svg.chart", has=page.locator("#listed-title"))
        bars = listed.locator("rect.bar")
        assert bars.count() >= 1 and all(b.bounding_box()["height"] > 1 for b in bars.all())   # bars, not an empty frame
        # the chart's bar for the list month is the table's figure below it
        bar = listed.locator(f'rect.bar[data-category="{live.month}"]')
        cell = page.locator(f'table[data-chart="listed"] tr[data-month="{live.month}"] td.n')
        assert float(bar.get_attribute("data-value")) == float(cell.inner_text()) == len(live.listed)


# --- the auditor's look-up, a custodian's decision -----------------------------------------------

def test_a_lookup_by_number_is_approved_by_a_custodian_and_opens_the_explanation_once(live):
    month, cfg = live.month, live.cfg
    pid = live.listed.sort_values("rank")["pid"].iloc[1]
    residents = live.residents()
    number = str(residents.loc[residents["pid"] == pid, "resident_id"].iloc[0])
    with live.logged_in("auditor") as auditor:
        follow(auditor, "宛名番号による照会")
        auditor.get_by_label("月").select_option(month)
        auditor.get_by_label("宛名番号").fill(number)
        auditor.get_by_label("理由").fill("区民からの問い合わせに答えるため（掲載理由の確認）")
        asked = submit(auditor, auditor.get_by_role("button", name="照会する"))
        assert asked.ok and auditor.url == live.at("/audit/lookups")
        mine = auditor.locator("tr", has_text="区民からの問い合わせ")   # the request in 自分の照会
        assert "承認待ち" in mine.inner_text() and month in mine.inner_text()
        assert number not in auditor.content() and pid not in auditor.content()   # neither echoed nor answered yet
        assert not auditor.get_by_role("button", name="結果を開く").count()

        with live.logged_in("custodian") as custodian:   # another person, in another browser
            follow(custodian, "宛名番号による照会の承認")
            row = custodian.locator("tr", has_text=pid[:12])
            assert ACCOUNTS["auditor"] in row.inner_text() and "区民からの問い合わせ" in row.inner_text()
            row.get_by_label("メモ").fill("問い合わせ対応のため承認")
            submit(custodian, row.get_by_role("button", name="承認"))
            assert "承認待ちの照会はありません" in main_text(custodian)

        auditor.reload(wait_until="load")
        result = submit(auditor, auditor.get_by_role("button", name="結果を開く"))
        assert result.ok and pid in main_text(auditor) and f"{month} のリストに載っています" in main_text(auditor)
        follow(auditor, "掲載理由の説明")
        assert auditor.url == live.at(f"/audit/months/{month}/explain/{pid}")
        assert auditor.locator("pre").text_content() == person_of(cfg, month, pid).text
        assert number not in auditor.content()
        auditor.goto(live.at("/audit/lookups"), wait_until="load")   # the result was shown once
        assert "表示済み" in mine.inner_text()
        assert not auditor.get_by_role("button", name="結果を開く").count()
    assert not audit.verify(cfg.audit_log) and number not in cfg.audit_log.read_text()


# --- review, approval and release in the browser; a visit, and its label -----------------------

SKIP_REASON, ADD_REASON = "入院中と家族から連絡あり", "近所から相談（新聞がたまっている）"


def _row(page, month: str, pid: str):
    """A district page's row of one person (found by the link to their history)."""
    return page.locator("tr", has=page.locator(f'a[href="/coord/months/{month}/people/{pid}"]'))


def test_a_reviewed_list_is_approved_and_released_in_the_browser_and_its_visit_comes_back_as_a_label(
        ward, browser, tmp_path):
    with live_site(ward, tmp_path / "ward", browser) as site:
        month, cfg = site.month, site.cfg
        district = site.listed["district"].value_counts().sort_index().idxmax()   # someone stays listed beside the skipped
        people = site.people(district)
        skipped = people["pid"].iloc[0]
        added = site.unlisted_resident(district)
        number, added_pid = str(added["resident_id"]), str(added["pid"])
        name_of = site.residents().set_index("pid")["name"]
        here = site.at(f"/coord/months/{month}/districts/{quote(district, safe='')}")

        # the coordinator reviews the pseudonymous list and submits the review
        with site.logged_in("coordinator") as coordinator:
            follow(coordinator, "各月の訪問リスト")
            assert "公開前" in coordinator.locator("tr", has_text=month).inner_text()
            follow(coordinator, month, exact=True)
            follow(coordinator, district, exact=True)
            before = main_text(coordinator)
            assert "公開前" in before and all(p[:12] in before for p in people["pid"])
            assert not coordinator.locator('input[name="visit_date"]').count()   # nobody visits a pseudonym
            assert not [n for n in name_of[people["pid"]] if n in before]

            row = _row(coordinator, month, skipped)
            row.get_by_label("見直し").select_option(label="今回は訪問しない")
            row.get_by_label("理由").fill(SKIP_REASON)
            submit(coordinator, row.get_by_role("button", name="保存"))
            assert f"今回は訪問しない：{SKIP_REASON}" in _row(coordinator, month, skipped).inner_text()

            adding = coordinator.locator('form[action$="/additions"]')
            adding.get_by_label("宛名番号").fill(number)
            adding.get_by_label("理由").fill(ADD_REASON)
            submit(coordinator, adding.get_by_role("button", name="追加"))
            assert coordinator.url == here and not coordinator.locator("p.error").count()
            shown = main_text(coordinator)
            assert added_pid[:12] in shown and ADD_REASON in shown and number not in coordinator.content()

            follow(coordinator, "地区の一覧へ戻る")
            assert "提出していない見直しがあります" in main_text(coordinator)
            submit(coordinator, coordinator.get_by_role("button", name="見直しを承認者に提出"))
            assert "提出した見直しが最新です" in main_text(coordinator)
            review = submitted_review(cfg, month)
            assert review.skips == ((skipped, SKIP_REASON),) and review.adds == ((added_pid, district, ADD_REASON),)

            # each approver sees the review, uploads their own key file and signs; the second releases
            for ident, account in APPROVERS.items():
                with site.logged_in("approver", account=account) as approver:
                    follow(approver, "公開の承認とリリース")
                    follow(approver, month, exact=True)
                    seen = main_text(approver)
                    assert SKIP_REASON in seen and ADD_REASON in seen and skipped[:12] in seen and added_pid[:12] in seen
                    assert number not in approver.content() and name_of[added_pid] not in seen   # pseudonyms only
                    assert "人分そろうと公開できます" in seen and not approver.get_by_role("button", name="公開する").count()
                    approver.get_by_label("承認者の鍵ファイル").set_input_files(site.key_file(ident))
                    signed = submit(approver, approver.get_by_role("button", name="署名して承認"))
                    assert signed.ok and f"あなた（{ident}）は現在のリストを承認済みです" in main_text(approver), main_text(approver)
                    if ident == "B":
                        approver.get_by_label("受け取り手").select_option(label="コーディネーター（区職員）")
                        submit(approver, approver.get_by_role("button", name="公開する"))
                        assert f"{len(site.listed)} 人分を公開しました" in main_text(approver), main_text(approver)
            assert [a["approver_id"] for a in approvals(cfg, month)] == ["A", "B"]
            assert all(a["review_sha256"] == review.digest() for a in approvals(cfg, month))
            info, sheet = released_sheet(cfg, month)
            assert info["review"]["sha256"] == review.digest() and info["account"] == APPROVERS["B"]
            released_by = [e for e in audit.entries(cfg.audit_log) if e["event"] == "release"]
            assert [e["account"] for e in released_by] == [APPROVERS["B"]]

            # names now: the added person's, not the skipped one's; each view logged
            logged = len(audit.entries(cfg.audit_log))
            coordinator.goto(here, wait_until="load")
            shown = main_text(coordinator)
            mine = sheet[sheet["district"] == district]
            assert all(name in shown for name in mine["name"])
            assert name_of[added_pid] in shown and f"担当者による追加：{ADD_REASON}" in shown
            skipped_rank = int(people["rank"].iloc[0])
            assert not _row(coordinator, month, skipped).count() and skipped_rank not in set(sheet["rank"].astype(int))
            assert name_of[skipped] not in shown or name_of[skipped] in set(mine["name"])   # unless a namesake is listed
            assert [(e["event"], e["account"], e["district"]) for e in audit.entries(cfg.audit_log)[logged:]] == [
                ("web_view", ACCOUNTS["coordinator"], district)]

            # a visit to the added person, through the form
            row = _row(coordinator, month, added_pid)
            row.get_by_label("訪問日").fill("2026-11-05")
            row.get_by_label("訪問結果").select_option(label="要支援")
            saved = submit(coordinator, row.get_by_role("button", name="記録"))
            assert saved.ok and coordinator.url == here
            assert "2026-11-05 要支援" in _row(coordinator, month, added_pid).inner_text()

            submit(coordinator, _row(coordinator, month, added_pid).get_by_role("link", name="これまでの訪問"))
            entered = _section(coordinator, "このアプリで記録した訪問")
            assert "2026-11-05" in entered and "要支援" in entered and ACCOUNTS["coordinator"] in entered
            assert _section(coordinator, "提供済みの訪問結果").split() == ["なし", "none"]   # not delivered yet

            nxt = site.deliver_next_month()
            known = outcomes_known_at(cfg.lake, nxt).visits
            theirs = known[known["pid"] == added_pid]
            assert list(theirs["outcome"]) == ["needs_support"]
            assert [str(d)[:10] for d in theirs["visit_date"]] == ["2026-11-05"]
            coordinator.reload(wait_until="load")
            delivered = _section(coordinator, "提供済みの訪問結果")
            assert "2026-11-05" in delivered and "要支援" in delivered   # the batch has it as a label now
        with pytest.raises(ScreenshotRefused, match="released"):   # docs/ never gets a page with names
            shoot_app(browser, cfg, month, tmp_path / "shots")
        assert not (tmp_path / "shots").exists()
        assert not audit.verify(cfg.audit_log) and number not in cfg.audit_log.read_text()


# --- screenshots -------------------------------------------------------------------------------

def test_the_app_screenshots_are_shot_through_the_app_and_show_something(live, browser, tmp_path):
    shots = shoot_app(browser, live.cfg, live.month, tmp_path)
    assert [p.name for p in shots] == list(SHOTS) and len(SHOTS) == 10
    for path in shots:
        image = Image.open(path).convert("L")
        assert image.width == 1280 and image.height >= 400
        assert ImageStat.Stat(image).stddev[0] > 10, f"{path.name} is nearly blank"
        assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16, f"{path.name} has almost no detail"
    with live.app.state.sessions() as db:   # the screenshots' accounts went into a throwaway database
        from pipelines.web.db import User
        assert sorted(u.name for u in db.query(User).all()) == sorted({*ACCOUNTS.values(), *APPROVERS.values()})
