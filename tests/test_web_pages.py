"""The web app's pages over the session's ward: the auditor's (pseudonymous only, every route
walked), the coordinator's (names only after release, each view logged), visits exported as
the next month's outreach_outcomes, and two coordinators saving at once."""
from __future__ import annotations

import html
import posixpath
import re
import shutil
import threading
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd
import pytest

from contract.months import shift
from contract.sources import SOURCES
from contract.storage import file_sha256, read_json, read_parquet, write_json
from pipelines import audit
from pipelines.catalog import runs, validation
from pipelines.catalog.lake import outcomes_known_at
from pipelines.config import Config, load_config
from pipelines.explain import person_of
from pipelines.leakscan import inbox_identifiers, scan_texts
from pipelines.reading import read_source
from pipelines.release import release, released_sheet
from pipelines.web.db import Visit
from tests.approving import approve_as
from tests.webapp import Clock, app_for, cheap_hashes, csrf_of, logged_in, routes

BASIS, PURPOSE = "個人情報保護法第69条第2項第2号", "見守り訪問（孤立の予防）"
USERS = {"aoki": "auditor", "kato": "coordinator", "mori": "coordinator"}


@dataclass
class Site:
    cfg: Config
    month: str
    app: object
    clock: Clock
    sheet: pd.DataFrame        # the coordinator's released sheet (rank, district, resident_id, name, …)
    listed: pd.DataFrame

    def district(self, smallest: int = 1) -> str:
        counts = self.listed["district"].value_counts()
        return sorted(counts[counts >= smallest].index)[0]

    def people(self, district: str) -> pd.DataFrame:
        return self.listed[self.listed["district"] == district].sort_values("rank")


def _site(ward, root, monkeypatch) -> Site:
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    for approver in ("A", "B"):
        approve_as(cfg, ward.month, approver, BASIS, PURPOSE)
    release(cfg, ward.month, "coordinator")
    cheap_hashes(monkeypatch)
    clock = Clock()
    return Site(cfg, ward.month, app_for(cfg, clock, USERS), clock, released_sheet(cfg, ward.month)[1],
                read_parquet(runs.list_file(cfg, ward.month)))


@pytest.fixture(scope="module")
def site(ward, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _site(ward, tmp_path_factory.mktemp("web") / "ward", monkeypatch)


@pytest.fixture
def own_site(ward, tmp_path, monkeypatch):
    """A site of this test's own, for tests that deliver into the inbox or ingest."""
    return _site(ward, tmp_path / "ward", monkeypatch)


def _district_url(site: Site, district: str) -> str:
    return f"/coord/months/{site.month}/districts/{quote(district)}"


def _save(client, site: Site, district: str, pid: str, day: str, outcome: str) -> int:
    page = client.get(_district_url(site, district))
    return client.post(_district_url(site, district) + "/visits",
                       data={"csrf": csrf_of(page.text), "pid": pid, "visit_date": day, "outcome": outcome}).status_code


def _outcomes_file(site: Site) -> pd.DataFrame:
    path = site.cfg.inbox / shift(site.month, 1) / "outreach_outcomes.csv"
    return read_source(path, SOURCES["outreach_outcomes"], delivery_month=shift(site.month, 1)).rows


def _resident_id(site: Site, pid: str) -> str:
    rank = int(site.listed.loc[site.listed["pid"] == pid, "rank"].iloc[0])
    return site.sheet.loc[site.sheet["rank"].astype(int) == rank, "resident_id"].iloc[0]


# --- auditor ---------------------------------------------------------------------------------

def test_auditor_sees_the_batchs_own_report_and_cards_unchanged(site):
    client = logged_in(site.app, "aoki")
    assert site.month in client.get("/audit").text
    report = client.get(f"/audit/months/{site.month}/report/index.html")
    assert report.content == runs.report_file(site.cfg, site.month).read_bytes()
    beside = runs.report_dir(site.cfg, site.month) / "model_card.html"
    if 'href="model_card.html"' in report.text:   # the report's own link to its card resolves
        assert client.get(f"/audit/months/{site.month}/report/model_card.html").content == beside.read_bytes()
    versions = runs.card_versions(site.cfg)
    assert versions, "the session ward registers a model"
    for version in versions:
        assert client.get(f"/audit/cards/{version}").content == runs.card_paths(site.cfg, version)[1].read_bytes()


def test_the_reports_data_docs_link_and_every_data_docs_link_open_in_the_app(site):
    client = logged_in(site.app, "aoki")
    base = f"/audit/months/{site.month}/report/"
    report = client.get(base + "index.html").text
    link = re.search(r'<a href="([^"]+)">Data Docs</a>', report).group(1)
    index_url = posixpath.normpath(posixpath.join(base, link))
    folder = validation.docs_dir(site.cfg.work, site.month)
    seen, todo = set(), [index_url]
    while todo:   # follow every relative link of every Data Docs page, as a reader clicking would
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        page = client.get(url)
        assert page.status_code == 200, url
        assert page.content == (folder / url.split("/data_docs/", 1)[1]).read_bytes()
        for href in re.findall(r'href="([^"#:]+)"', page.text):
            todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(url), href)))
    assert len(seen) == len(list(folder.rglob("*.html")))
    for bad in ("validations/..%2F..%2Ftraining.json", "validations/features.json", "validations/nope.html"):
        assert client.get(f"/audit/runs/{site.month}/data_docs/{bad}").status_code == 404


def test_auditor_explanation_is_the_cli_view_of_the_stored_run(site):
    client = logged_in(site.app, "aoki")
    listing = client.get(f"/audit/months/{site.month}/list").text
    for pid in site.listed.sort_values("rank")["pid"].iloc[[0, -1]]:
        assert f"/audit/months/{site.month}/explain/{pid}" in listing
        page = client.get(f"/audit/months/{site.month}/explain/{pid}").text
        shown = html.unescape(re.search(r"<pre>(.*?)</pre>", page, re.S).group(1))
        view = person_of(site.cfg, site.month, pid)
        assert shown == view.text
        assert ("data:image/png;base64," in page) == (view.waterfall is not None)


def test_audit_log_page_shows_its_verification(own_site):
    client = logged_in(own_site.app, "aoki")
    page = client.get("/audit/log").text
    assert "chain intact" in page and "release" in page and "FAILED" not in page
    lines = own_site.cfg.audit_log.read_bytes().splitlines()
    lines[0] = lines[0].replace(b'"event": "', b'"event": "x')   # an edited entry
    own_site.cfg.audit_log.write_bytes(b"\n".join(lines) + b"\n")
    page = client.get("/audit/log").text
    assert "verification FAILED" in page and "line 1: MAC does not match" in page


def _needles(site: Site) -> tuple[dict[str, str], list[str]]:
    """The project's leak-guard needles of the whole inbox, and the released people's own values."""
    own = [v for c in ("resident_id", "name", "address") for v in site.sheet[c] if v]
    return inbox_identifiers(site.cfg.inbox), own


def _fill(path: str, site: Site, pid: str, version: str, district: str) -> str:
    return (path.replace("{month}", site.month).replace("{pid}", pid).replace("{version}", version)
            .replace("{district}", quote(district)).replace("{name}", "index.html").replace("{suite}", "features.html"))


def test_an_auditor_reaches_no_name_address_or_resident_number_on_any_route(site):
    district = site.district()
    pid = site.people(district)["pid"].iloc[0]
    coordinator = logged_in(site.app, "kato")   # names viewed and a visit saved: the log has both
    assert _save(coordinator, site, district, pid, "2026-11-05", "not_home") == 303
    needles, own = _needles(site)
    auditor = logged_in(site.app, "aoki")
    walked = set()
    for method, path in routes(site.app):
        if method != "GET" or path == "/login":
            continue
        urls = [_fill(path, site, pid, v, district) for v in runs.card_versions(site.cfg)]
        if "{name}" in path:
            urls.append(_fill(path, site, pid, "1", district).replace("index.html", "model_card.html"))
        for url in dict.fromkeys(urls):
            response = auditor.get(url)
            # the auditor's own pages and the home page open; every other role's page is 403
            assert response.status_code == (200 if path == "/" or path.startswith("/audit") else 403), url
            text = response.content.decode("utf-8", "ignore")
            assert not scan_texts([text], needles), url
            assert not [v for v in own if v in text], url
        walked.add(path)
    assert walked == {p for m, p in routes(site.app) if m == "GET"} - {"/login"}
    page = auditor.get(_district_url(site, district))
    assert auditor.post(_district_url(site, district) + "/visits",
                        data={"csrf": csrf_of(auditor.get("/").text), "pid": pid, "visit_date": "2026-11-06",
                              "outcome": "declined"}).status_code == 403 and page.status_code == 403


@pytest.mark.parametrize("url", [
    "/audit/months/..%2F..%2F..%2Fetc/report/index.html", "/audit/months/2026-13/list", "/audit/months/2026-1/list",
    "/audit/months/2026-10%0A/list", "/audit/months/{m}/report/..%2Fmanifest.json", "/audit/months/{m}/report/manifest.json",
    "/audit/months/{m}/explain/..%2F..%2Ftraining.json", "/audit/months/{m}/explain/" + "0" * 32,
    "/audit/cards/1%2F..%2F..%2Fmlflow", "/audit/cards/0", "/audit/months/{m}/report/%2E%2E/training.json",
    "/coord/months/..%2F{m}", "/coord/months/{m}/districts/..%2F..", "/coord/months/{m}/people/..%2Fx",
])
def test_path_and_month_parameters_are_checked(site, url):
    client = logged_in(site.app, "kato" if url.startswith("/coord") else "aoki")
    response = client.get(url.replace("{m}", site.month))
    assert response.status_code == 404
    assert '"stages"' not in response.text and "root:" not in response.text


# --- coordinator -----------------------------------------------------------------------------

def test_before_release_the_coordinator_sees_pseudonyms_and_cannot_record(site):
    record = site.cfg.releases_dir / site.month / "release.json"
    hidden = record.with_name("held-back.json")
    district = site.district()
    record.rename(hidden)
    try:
        client = logged_in(site.app, "kato")
        page = client.get(_district_url(site, district)).text
        people = site.people(district)
        assert all(pid[:12] in page for pid in people["pid"]) and "公開前" in page
        assert not [v for v in _needles(site)[1] if v in page] and "visit_date" not in page
        before = len(audit.entries(site.cfg.audit_log))
        assert _save(client, site, district, people["pid"].iloc[0], "2026-11-05", "no_concern") == 409
        assert len(audit.entries(site.cfg.audit_log)) == before   # nothing identified was shown
    finally:
        hidden.rename(record)


def test_after_release_the_district_page_names_its_people_and_logs_the_view(site):
    client = logged_in(site.app, "kato")
    district = site.district()
    before = len(audit.entries(site.cfg.audit_log))
    page = client.get(_district_url(site, district)).text
    mine = site.sheet[site.sheet["district"] == district]
    others = site.sheet[site.sheet["district"] != district]
    assert all(html.escape(name) in page for name in mine["name"])
    assert not [name for name in others["name"] if name in page]
    logged = audit.entries(site.cfg.audit_log)[before:]
    assert [(e["event"], e["account"], e["district"], e["people"], e["purposes"]) for e in logged] == [
        ("web_view", "kato", district, len(mine), [PURPOSE])]
    assert not audit.verify(site.cfg.audit_log)


def test_a_name_with_markup_is_shown_escaped_and_an_altered_sheet_is_refused(site):
    csv = site.cfg.releases_dir / site.month / "outreach.csv"
    record_path = csv.with_name("release.json")
    original, record = csv.read_bytes(), read_json(record_path)
    district = site.district()
    sheet = site.sheet.copy()
    first = sheet.index[sheet["district"] == district][0]
    sheet.loc[first, "name"] = "<script>alert(1)</script>"
    try:
        sheet.to_csv(csv, index=False, encoding="utf-8-sig")
        client = logged_in(site.app, "kato")
        altered = client.get(_district_url(site, district))
        assert altered.status_code == 500 and "does not match its release record" in altered.text
        assert "<script>" not in altered.text
        # the altered sheet is written in the plain form (column keys), and the record says so
        write_json({**record, "csv_form": "plain", "files": {**record["files"], "outreach.csv": file_sha256(csv)}},
                   record_path)
        page = client.get(_district_url(site, district)).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    finally:
        csv.write_bytes(original)
        write_json(record, record_path)


def test_recorded_visits_become_next_months_outcomes_and_labels(own_site):
    site = own_site
    client = logged_in(site.app, "kato")
    district = site.district(smallest=2)
    a, b = site.people(district)["pid"].iloc[:2]
    assert _save(client, site, district, a, "2026-11-05", "not_home") == 303
    assert _save(client, site, district, a, "2026-11-12", "needs_support") == 303
    assert _save(client, site, district, b, "2026-10-20", "declined") == 303
    assert _save(client, site, district, b, "2026-10-20", "no_concern") == 303   # a correction
    for day, outcome in (("2026-09-30", "no_concern"), ("2026-11-21", "no_concern"), ("11/5", "no_concern"),
                         ("2026-11-05", "dead")):   # before the list, after today, not a date, not an outcome
        page = client.get(_district_url(site, district))
        refused = client.post(_district_url(site, district) + "/visits",
                              data={"csrf": csrf_of(page.text), "pid": a, "visit_date": day, "outcome": outcome})
        assert refused.status_code == 200 and 'class="error"' in refused.text
    got = _outcomes_file(site)
    assert sorted(zip(got["resident_id"], got["visit_date"].dt.strftime("%Y-%m-%d"), got["outcome"])) == sorted([
        (_resident_id(site, a), "2026-11-05", "not_home"), (_resident_id(site, a), "2026-11-12", "needs_support"),
        (_resident_id(site, b), "2026-10-20", "no_concern")])
    exports = [e for e in audit.entries(site.cfg.audit_log) if e["event"] == "outcomes_web"]
    assert [(e["account"], e["rows"], e["into"]) for e in exports][-1] == ("kato", 3, shift(site.month, 1))
    assert len(exports) == 4 and not audit.verify(site.cfg.audit_log)   # one export per save
    history = client.get(f"/coord/months/{site.month}/people/{a}").text
    assert "2026-11-05" in history and "2026-11-12" in history and "要支援" in history

    # the next month's delivery: the batch ingests the exported outcomes like a returned sheet's
    nxt = shift(site.month, 1)
    for source in ("residents", "checkups", "care_premiums"):
        shutil.copy(site.cfg.inbox / site.month / f"{source}.csv", site.cfg.inbox / nxt / f"{source}.csv")
    from pipelines.ingest import ingest_month   # imported here: only this test ingests
    from pipelines.pseudonymise import load_key

    ingest_month(site.cfg, nxt, load_key(site.cfg.key_file))
    known = outcomes_known_at(site.cfg.lake, nxt).visits
    assert sorted(known.loc[known["pid"].isin([a, b]), "outcome"]) == ["needs_support", "no_concern", "not_home"]
    history = client.get(f"/coord/months/{site.month}/people/{b}").text
    assert history.count("2026-10-20") == 2   # entered here, and delivered to the batch


def test_two_coordinators_saving_the_same_district_at_once_lose_nothing(own_site):
    site = own_site
    district = site.listed["district"].value_counts().sort_index().idxmax()
    pids = list(site.people(district)["pid"])
    days = {"kato": "2026-11-10", "mori": "2026-11-11"}   # both visit everyone, a day apart
    clients = {name: logged_in(site.app, name) for name in days}
    start = threading.Barrier(len(days))
    results: list[int] = []

    def work(name: str) -> None:
        start.wait()
        for pid in pids:
            results.append(_save(clients[name], site, district, pid, days[name], "no_concern"))

    threads = [threading.Thread(target=work, args=(name,)) for name in days]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [303] * (2 * len(pids))
    with site.app.state.sessions() as db:
        saved = {(v.pid, str(v.visit_date), v.recorded_by) for v in db.query(Visit).all()}
    assert saved == {(p, day, name) for name, day in days.items() for p in pids}
    got = _outcomes_file(site)
    assert sorted(zip(got["resident_id"], got["visit_date"].dt.strftime("%Y-%m-%d"))) == sorted(
        (_resident_id(site, p), day) for day in days.values() for p in pids)
    assert not audit.verify(site.cfg.audit_log)
