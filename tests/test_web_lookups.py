"""The 宛名番号 look-up (an auditor asks with a reason, a custodian decides, the auditor sees the pid
once), the custodian's pages, and the auditor's fairness and data-quality pages, which must show
the published report's own cells."""
from __future__ import annotations

import html
import re
import shutil

import pandas as pd
import pytest

from contract.sources import SOURCES
from contract.storage import read_parquet
from pipelines import audit
from pipelines.catalog import runs
from pipelines.catalog.runs import inbox_dir
from pipelines.config import load_config
from pipelines.leakscan import inbox_identifiers, scan_texts
from pipelines.pseudonymise import load_key, pseudonymise
from pipelines.reading import delivery_file, read_source
from pipelines.release import ReleaseRefused, release
from pipelines.web.db import User
from pipelines.web.lookups import Lookup, commitment
from pipelines.web.published import report_section
from tests.approving import approve_as
from tests.webapp import Clock, app_for, cheap_hashes, csrf_of, logged_in, routes

USERS = {"aoki": "auditor", "ueda": "auditor", "sato": "custodian", "suzuki": "custodian", "kato": "coordinator"}
REASON = "区民からの苦情の申立てを調べるため"
LOOKUP_EVENTS = ("lookup_request", "lookup_decision", "lookup_result")


@pytest.fixture
def site(ward, tmp_path, monkeypatch):
    """A copy of the session ward of this test's own (each test's requests and log start empty)."""
    root = tmp_path / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    cheap_hashes(monkeypatch)
    clock = Clock()
    return cfg, ward.month, app_for(cfg, clock, USERS), clock


def _residents(cfg, month: str) -> pd.DataFrame:
    """The inbox residents extract's 宛名番号 with their pids and whether each is on the list."""
    rows = read_source(delivery_file(inbox_dir(cfg, month), "residents"), SOURCES["residents"],
                       delivery_month=month).rows[["resident_id"]]
    rows["pid"] = pseudonymise(rows["resident_id"], load_key(cfg.key_file), "resident")
    rows["listed"] = rows["pid"].isin(set(read_parquet(runs.list_file(cfg, month), columns=["pid"])["pid"]))
    return rows


def _ask(client, month: str, resident_id: str, reason: str = REASON):
    page = client.get("/audit/lookups")
    return client.post("/audit/lookups", data={"csrf": csrf_of(page.text), "month": month,
                                               "resident_id": resident_id, "reason": reason})


def _request_ids(text: str) -> list[int]:
    return [int(n) for n in re.findall(r'name="request" value="(\d+)"', text)]


def _decide(client, request: int, decision: str, note: str = "申立ての記録を確認しました"):
    page = client.get("/custodian")
    return client.post("/custodian/lookups/decide", data={"csrf": csrf_of(page.text), "request": str(request),
                                                          "decision": decision, "note": note})


def _open(client, request: int):
    page = client.get("/audit/lookups")
    return client.post("/audit/lookups/open", data={"csrf": csrf_of(page.text), "request": str(request)})


def _lookup_entries(cfg) -> list[dict]:
    return [e for e in audit.entries(cfg.audit_log) if e["event"] in LOOKUP_EVENTS] if cfg.audit_log.exists() else []


def _last_request(app) -> Lookup:
    with app.state.sessions() as db:
        return db.query(Lookup).order_by(Lookup.id.desc()).first()


def test_asked_approved_and_opened_once_the_auditor_sees_the_pid_and_the_explanation(site):
    cfg, month, app, clock = site
    person = _residents(cfg, month).query("listed").iloc[0]
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")
    assert _ask(auditor, month, person["resident_id"]).status_code == 303
    mine = auditor.get("/audit/lookups").text
    assert "承認待ち" in mine and person["pid"] not in mine and not _request_ids(mine)   # nothing to open yet
    pending = custodian.get("/custodian").text
    [request] = _request_ids(pending)
    assert person["pid"] in pending and "aoki" in pending and REASON in pending
    clock.advance(minutes=20)
    assert _decide(custodian, request, "approve").status_code == 303
    assert _request_ids(auditor.get("/audit/lookups").text) == [request]
    result = _open(auditor, request)
    assert result.status_code == 200 and person["pid"] in result.text
    link = f"/audit/months/{month}/explain/{person['pid']}"
    assert f'href="{link}"' in result.text and "not on that month" not in result.text
    assert auditor.get(link).status_code == 200
    # single use: the result is gone once opened
    again = _open(auditor, request)
    assert again.status_code == 409 and person["pid"] not in again.text and "表示済み" in again.text
    logged = _lookup_entries(cfg)
    assert [(e["event"], e["account"]) for e in logged] == [
        ("lookup_request", "aoki"), ("lookup_decision", "sato"), ("lookup_result", "aoki")]
    assert logged[0]["reason"] == REASON and logged[0]["month"] == month
    assert logged[1]["decision"] == "approved" and logged[1]["note"] and logged[1]["requester"] == "aoki"
    assert logged[2]["listed"] is True
    # the log names nobody: every auditor reads it, so it holds a commitment to the pid, not the pid
    row = _last_request(app)
    assert logged[0]["pid_commitment"] == commitment(row.salt, person["pid"]) and row.pid == person["pid"]
    assert not [e for e in logged if person["pid"] in str(e)]
    assert not audit.verify(cfg.audit_log)


def test_a_person_not_on_the_list_is_said_so(site):
    cfg, month, app, _ = site
    person = _residents(cfg, month).query("not listed").iloc[0]
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")
    # the number as typed from paper: full-width digits and spaces are the same 宛名番号
    typed = " " + person["resident_id"].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + " "
    assert _ask(auditor, month, typed).status_code == 303
    [request] = _request_ids(custodian.get("/custodian").text)
    assert _decide(custodian, request, "approve").status_code == 303
    result = _open(auditor, request)
    assert "not on that month's list" in result.text and person["pid"] in result.text
    assert "/explain/" not in result.text
    assert _lookup_entries(cfg)[-1]["listed"] is False


@pytest.mark.parametrize("resident_id, reason, problem", [
    ("valid", "", "at least 8 characters"), ("valid", "   確認   ", "at least 8 characters"),
    ("valid", "宛名番号 {rid} の件で確認するため", "must not hold a resident's identifier"),
    ("12-34", REASON, "digits only"), ("", REASON, "digits only"),
])
def test_a_request_without_a_proper_reason_or_number_is_refused_and_nothing_kept(site, resident_id, reason, problem):
    cfg, month, app, _ = site
    rid = _residents(cfg, month)["resident_id"].iloc[0]
    resident_id = rid if resident_id == "valid" else resident_id
    auditor = logged_in(app, "aoki")
    refused = _ask(auditor, month, resident_id, reason.replace("{rid}", rid))
    assert refused.status_code == 422 and problem in html.unescape(refused.text)
    assert rid not in refused.text   # neither the number nor the reason is echoed back
    assert _last_request(app) is None and not _lookup_entries(cfg)


def test_a_refused_request_shows_the_note_and_never_the_result(site):
    cfg, month, app, _ = site
    person = _residents(cfg, month).query("listed").iloc[0]
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")
    _ask(auditor, month, person["resident_id"])
    [request] = _request_ids(custodian.get("/custodian").text)
    page = custodian.get("/custodian")
    no_note = custodian.post("/custodian/lookups/decide", data={"csrf": csrf_of(page.text), "request": str(request),
                                                                "decision": "refuse", "note": " "})
    assert no_note.status_code == 409 and "note" in no_note.text   # a decision needs a note
    assert _decide(custodian, request, "refuse", "理由が照会の要件に当たりません").status_code == 303
    mine = auditor.get("/audit/lookups").text
    assert "却下" in mine and "理由が照会の要件に当たりません" in mine and not _request_ids(mine)
    opened = _open(auditor, request)
    assert opened.status_code == 409 and person["pid"] not in opened.text
    assert _decide(custodian, request, "approve").status_code == 409   # decided once, for good
    assert [(e["event"], e.get("decision")) for e in _lookup_entries(cfg)] == [
        ("lookup_request", None), ("lookup_decision", "refused")]
    assert not audit.verify(cfg.audit_log)


def test_nobody_decides_their_own_request_and_auditors_decide_none(site):
    cfg, month, app, _ = site
    rid = _residents(cfg, month)["resident_id"].iloc[0]
    auditor = logged_in(app, "aoki")
    _ask(auditor, month, rid)
    request = _last_request(app).id
    other = logged_in(app, "ueda")   # an auditor, with a live session's own CSRF token
    assert other.post("/custodian/lookups/decide", data={"csrf": csrf_of(other.get("/").text), "request": str(request),
                                                         "decision": "approve", "note": "承認します"}).status_code == 403
    with app.state.sessions() as db:   # the requester becomes a custodian (a role change)
        db.query(User).filter(User.name == "aoki").one().role = "custodian"
        db.commit()
    own = logged_in(app, "aoki")
    assert "自分の照会です" in own.get("/custodian").text
    refused = _decide(own, request, "approve")
    assert refused.status_code == 409 and "your own request" in refused.text
    assert _last_request(app).status == "pending"
    assert _decide(logged_in(app, "sato"), request, "approve").status_code == 303   # another custodian may
    assert [e["account"] for e in _lookup_entries(cfg)] == ["aoki", "sato"]


def test_another_auditor_cannot_see_or_open_someone_elses_result(site):
    cfg, month, app, _ = site
    person = _residents(cfg, month).query("listed").iloc[0]
    aoki, ueda, custodian = logged_in(app, "aoki"), logged_in(app, "ueda"), logged_in(app, "sato")
    _ask(aoki, month, person["resident_id"])
    [request] = _request_ids(custodian.get("/custodian").text)
    _decide(custodian, request, "approve")
    theirs = ueda.get("/audit/lookups").text
    assert not _request_ids(theirs) and REASON not in theirs
    stolen = _open(ueda, request)
    assert stolen.status_code == 409 and person["pid"] not in stolen.text
    assert person["pid"] not in ueda.get("/audit/log").text   # nor through the audit log
    assert _open(aoki, request).status_code == 200   # the requester still can, once


@pytest.mark.parametrize("stage", ["pending", "approved"])
def test_requests_and_results_expire_after_24_hours(site, stage):
    cfg, month, app, clock = site
    rid = _residents(cfg, month)["resident_id"].iloc[0]
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")
    _ask(auditor, month, rid)
    request = _last_request(app).id
    if stage == "approved":
        clock.advance(hours=23, minutes=50)   # decided just in time (sessions idle out: log in again)
        assert _decide(logged_in(app, "sato"), request, "approve").status_code == 303
    clock.advance(hours=24, minutes=1)
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")   # the earlier sessions have expired
    assert request not in _request_ids(custodian.get("/custodian").text)
    assert "期限切れ" in auditor.get("/audit/lookups").text
    if stage == "pending":
        assert _decide(custodian, request, "approve").status_code == 409
    assert _open(auditor, request).status_code == 409
    assert [e["event"] for e in _lookup_entries(cfg)] == ["lookup_request"] + (["lookup_decision"] if stage == "approved" else [])


def _all_gets(client, app, month: str, pid: str) -> dict[str, str]:
    pages = {}
    for method, path in routes(app):
        if method == "GET" and path != "/login":
            url = (path.replace("{month}", month).replace("{pid}", pid).replace("{version}", "1")
                   .replace("{name}", "index.html").replace("{district}", "x"))
            pages[url] = client.get(url).content.decode("utf-8", "ignore")
    return pages


def test_the_resident_number_is_in_no_table_log_or_page(site):
    cfg, month, app, _ = site
    people = _residents(cfg, month)
    listed, unlisted = people.query("listed").iloc[0], people.query("not listed").iloc[0]
    auditor, custodian = logged_in(app, "aoki"), logged_in(app, "sato")
    for person in (listed, unlisted):
        _ask(auditor, month, person["resident_id"])
    first, second = sorted(_request_ids(custodian.get("/custodian").text))
    _decide(custodian, first, "approve")
    _decide(custodian, second, "refuse", "要件に当たりません")
    seen = [_open(auditor, first).text]
    seen += [*_all_gets(auditor, app, month, listed["pid"]).values(), *_all_gets(custodian, app, month, listed["pid"]).values()]
    needles = inbox_identifiers(cfg.inbox)
    assert not scan_texts(seen, needles)
    numbers = [p["resident_id"] for p in (listed, unlisted)]
    assert not [n for n in numbers for text in seen if n in text]
    stored = b"".join(p.read_bytes() for p in (cfg.custody / "app").glob("mimamori.db*"))
    log = cfg.audit_log.read_bytes()
    assert not [n for n in numbers if n.encode() in stored or n.encode() in log]
    assert not scan_texts([log.decode()], needles)
    assert listed["pid"].encode() in stored   # what is kept is the pseudonym
    assert not audit.verify(cfg.audit_log)


def test_custodian_sees_accounts_without_hashes_and_releases_without_sheets(site):
    cfg, month, app, clock = site
    for approver in ("A", "B"):
        try:
            approve_as(cfg, month, approver, "個人情報保護法第69条第2項第2号", "見守り訪問（孤立の予防）")
        except ReleaseRefused as refused:   # the session ward may carry an approval already
            assert "already approved" in str(refused)
    info = release(cfg, month, "coordinator")
    custodian = logged_in(app, "sato")
    accounts = custodian.get("/custodian/accounts").text
    assert all(name in accounts for name in USERS) and "$argon2" not in accounts
    releases = custodian.get("/custodian/releases").text
    assert month in releases and info["expires"] in releases and "live" in releases
    assert "見守り訪問（孤立の予防）" in releases
    assert not scan_texts([releases], inbox_identifiers(cfg.inbox))   # the record, never the sheet
    clock.now = clock.now.replace(year=clock.now.year + 1)
    assert "expired: run `mimamori purge`" in logged_in(app, "sato").get("/custodian/releases").text
    for user, path in (("aoki", "/custodian"), ("aoki", "/custodian/releases"), ("kato", "/custodian/accounts"),
                       ("sato", "/audit"), ("sato", "/audit/lookups")):
        assert logged_in(app, user).get(path).status_code == 403, (user, path)


# --- fairness and data quality: the report's own cells --------------------------------------

def _rows(fragment: str) -> list[str]:
    """Each table row of an HTML fragment as its cells' text (tags dropped, whitespace squashed)."""
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        out.append(" | ".join(" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells))
    return out


def _report_section(cfg, month: str, section: str) -> str:
    text = runs.report_file(cfg, month).read_text(encoding="utf-8")
    start = text.index(f'<h2 id="{section}">')
    return text[start:text.index("<h2", start + 4)]


def test_fairness_page_shows_the_reports_cells_and_nothing_else(site):
    cfg, month, app, _ = site
    page = logged_in(app, "aoki").get(f"/audit/months/{month}/fairness")
    assert page.status_code == 200
    published = _rows(_report_section(cfg, month, "fairness"))
    assert len(published) > 10 and _rows(page.text) == published
    assert "this month's list" in html.unescape(page.text) and "holdout" in page.text
    # findings are the report's sentences
    for sentence in re.findall(r"<li>(.*?)<br>", _report_section(cfg, month, "fairness")):
        assert sentence in page.text
    assert f'href="/audit/months/{month}/fairness"' in logged_in(app, "aoki").get("/audit").text


def test_a_cell_the_report_suppressed_stays_suppressed(site):
    cfg, month, app, _ = site
    path = runs.report_file(cfg, month)
    section = _report_section(cfg, month, "fairness")
    # the first count cell of the month's table, as if the report's pass had hidden it
    first = re.search(r'<td class="n">(\d+)</td>', section)
    hidden = section[:first.start()] + '<td class="n">&lt;10</td>' + section[first.end():]
    path.write_text(path.read_text(encoding="utf-8").replace(section, hidden), encoding="utf-8")
    # the run's manifest holds the report's digest: an altered report is refused, not shown
    assert logged_in(app, "aoki").get(f"/audit/months/{month}/fairness").status_code == 404
    # what the page would read over the edited report
    cells = [c.text for b in report_section(path.read_text(encoding="utf-8"), "fairness") if b.kind == "table"
             for row in b.rows for c in row]
    assert "<10" in cells and first.group(1) not in cells[:cells.index("<10") + 1]


def test_quality_page_shows_the_reports_tables_and_the_stored_results(site):
    cfg, month, app, _ = site
    page = logged_in(app, "aoki").get(f"/audit/months/{month}/quality")
    assert page.status_code == 200
    published = _rows(_report_section(cfg, month, "quality"))
    shown = _rows(page.text)
    assert published and shown[:len(published)] == published
    # the report's total of expectations checked is the sum over the stored suites on the page
    checked = int(re.search(r"Great Expectations: (\d+) 件", _report_section(cfg, month, "quality")).group(1))
    per_suite = [r for r in shown[len(published):] if re.match(r"^[^|]+ \| (合格 passed|不合格あり failures) \| \d+", r)]
    assert per_suite and sum(int(r.split(" | ")[2]) for r in per_suite) == checked
    assert f'href="/audit/months/{month}/quality"' in logged_in(app, "aoki").get("/audit").text
