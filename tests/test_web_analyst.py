"""The analyst's pages over the session ward (issue 16): run history and stage status as the
manifests record them, month-over-month figures equal to what the lake holds (through the
disclosure pass), charts whose bars are the tables' numbers, other roles refused, no identifier."""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from contract.months import month_end, shift
from contract.storage import read_json, read_parquet, write_json
from models.train import labels_for
from pipelines.catalog import runs
from pipelines.catalog.lake import ingested_months, outcomes_known_at
from pipelines.leakscan import scan_texts
from pipelines.monthly import run_month
from pipelines.web.accounts import add_user
from tests.test_web_pages import _needles, _site
from tests.webapp import PASSWORD, logged_in

NS = {"s": "http://www.w3.org/2000/svg"}
EARLIER = ("2026-08", "2026-09")   # run on the copy, so the history has three lists


@pytest.fixture(scope="module")
def site(ward, tmp_path_factory):
    """The web pages' site (the session ward, released to the coordinator) with two earlier
    months run as well and an analyst's account."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        site = _site(ward, tmp_path_factory.mktemp("analyst") / "ward", monkeypatch)
        for month in EARLIER:
            run_month(site.cfg, month)
        with site.app.state.sessions() as db:
            add_user(db, "ueda", "analyst", PASSWORD)
        yield site


@pytest.fixture(scope="module")
def pages(site):
    client = logged_in(site.app, "ueda")
    return {"runs": client.get("/analyst"), "trends": client.get("/analyst/trends"), "home": client.get("/")}


def _table(page: str, chart: str) -> dict[str, list[str]]:
    """month -> the cells' text of a figures table (tags stripped)."""
    body = re.search(rf'<table class="figures" data-chart="{chart}">(.*?)</table>', page, re.S).group(1)
    rows = {}
    for month, row in re.findall(r'<tr data-month="([^"]+)">(.*?)</tr>', body, re.S):
        rows[month] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                       for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return rows


def _chart(page: str, chart_id: str) -> ET.Element:
    svg = re.search(rf'<svg [^>]*aria-labelledby="{chart_id}-title.*?</svg>', page, re.S).group(0)
    return ET.fromstring(svg)


def _bars(svg: ET.Element) -> dict[tuple[str, str], float]:
    return {(b.get("data-series"), b.get("data-category")): float(b.get("data-value"))
            for b in svg.findall("s:rect[@class='bar']", NS)}


def _rate(text: str) -> float | None:
    """The value of a shown rate `12.5% [..] (2/16)`; None for anything withheld or over nobody."""
    found = re.search(r"\((\d+)/(\d+)\)$", text)
    return int(found.group(1)) / int(found.group(2)) if found and "%" in text else None


def _shown(count: int, text: str, threshold: int = 10) -> None:
    """A count as the disclosure pass may show it: exactly, or withheld when it is small."""
    if text in ("x", f"<{threshold}"):
        assert text == "x" or 0 < count < threshold, (count, text)
    else:
        assert int(text) == count


def test_home_links_the_analysts_pages(pages):
    home = pages["home"].text
    assert 'href="/analyst"' in home and 'href="/analyst/trends"' in home


def test_run_history_is_what_each_manifest_and_release_record_says(site, pages):
    page = pages["runs"].text
    assert pages["runs"].status_code == 200
    months = runs.months_run(site.cfg)
    assert set(EARLIER) | {site.month} <= set(months)
    for month in months:
        manifest = runs.read_manifest(site.cfg, month)
        section = re.search(rf'<section class="run" id="run-{month}">(.*?)</section>', page, re.S).group(1)
        assert "完了" in section and manifest["status"] == "done"
        train = manifest["stages"]["train"]
        assert (f"モデル v{train['model_version']}" in section) == (train["mode"] == "model")
        for name, info in manifest["stages"].items():
            row = re.search(rf'<tr data-stage="{name}">(.*?)</tr>', section, re.S).group(1)
            assert info["status"] in row and str(info["seconds"]) in row
        listed = re.search(r'<span data-count="listed">.*?(\d+)</span>', section, re.S).group(1)
        assert int(listed) == manifest["stages"]["prioritise"]["listed"] == len(read_parquet(runs.list_file(site.cfg, month)))
    # only the released month shows its release record (rows, when, expiry), the others none
    record = read_json(site.cfg.releases_dir / site.month / "release.json")
    released = re.search(rf'id="run-{site.month}">.*?<span class="release" data-recipient="coordinator">(.*?)</p>',
                         page, re.S).group(1)
    assert f"{record['rows']} 行" in released and record["released"] in released and record["expires"] in released
    for month in EARLIER:
        assert "release-none" in re.search(rf'id="run-{month}">(.*?)</section>', page, re.S).group(1)


def test_a_failed_or_altered_run_is_shown_as_such(site):
    client = logged_in(site.app, "ueda")
    folder = runs.run_dir(site.cfg, "2026-07")
    write_json({"month": "2026-07", "status": "failed", "stages": {
        "ingest": {"status": "done", "seconds": 1.5}, "features": {"status": "failed", "error": "DataDamaged", "seconds": 0.2}}},
        folder / "manifest.json")
    report = runs.report_file(site.cfg, EARLIER[0])
    original = report.read_bytes()
    try:
        report.write_bytes(original + b"<!-- edited -->")
        page = client.get("/analyst").text
        failed = re.search(r'id="run-2026-07">(.*?)</section>', page, re.S).group(1)
        assert "失敗" in failed and "DataDamaged" in failed
        altered = re.search(rf'id="run-{EARLIER[0]}">(.*?)</section>', page, re.S).group(1)
        assert "altered" in altered
        # neither counts as a completed month in the figures
        assert "2026-07" not in _table(client.get("/analyst/trends").text, "listed")
        assert EARLIER[0] not in _table(client.get("/analyst/trends").text, "listed")
    finally:
        report.write_bytes(original)
        (folder / "manifest.json").unlink()
        folder.rmdir()


def _truth(site, month: str) -> dict:
    """The month's figures computed here from the list and the lake (models/labels.py's window)."""
    cfg = site.cfg
    listed = read_parquet(runs.list_file(cfg, month))
    known = ingested_months(cfg.lake)[-1]
    outcomes = outcomes_known_at(cfg.lake, known)
    days = cfg.settings["labels"]["timespan_days"]
    v = outcomes.visits
    v = v[v["pid"].isin(listed["pid"]) & (v["visit_date"] > month_end(month))
          & (v["visit_date"] <= month_end(month) + pd.Timedelta(days=days))]
    latest = v.sort_values(["visit_date", "outcome"]).groupby("pid")["outcome"].last()
    labelled = labels_for(cfg.settings["labels"], outcomes, month, listed["pid"]).merge(listed[["pid", "exploration", "source"]], on="pid")
    labelled["ranker"] = labelled["source"].where(~labelled["exploration"], "exploration")
    return {"listed": len(listed), "visited": len(latest), "outcomes": latest.value_counts().to_dict(),
            "labelled": labelled.groupby("ranker")["label"].count().to_dict(),
            "positive": labelled.groupby("ranker")["label"].sum().to_dict()}


def test_month_figures_equal_the_list_and_the_lake(site, pages):
    page = pages["trends"].text
    assert pages["trends"].status_code == 200
    listed, visited = _table(page, "listed"), _table(page, "visited")
    outcomes, hits = _table(page, "outcomes"), _table(page, "hits")
    assert list(listed) == sorted(listed) and set(listed) == {*EARLIER, site.month}
    seen_visits = 0
    for month in listed:
        truth = _truth(site, month)
        assert int(listed[month][1]) == truth["listed"] == runs.read_manifest(site.cfg, month)["stages"]["prioritise"]["listed"]
        _shown(truth["visited"], visited[month][1])
        share = _rate(visited[month][2])
        if share is not None:
            assert share == pytest.approx(truth["visited"] / truth["listed"])
        header = re.search(r'<table class="figures" data-chart="outcomes">\s*<tr>(.*?)</tr>', page, re.S).group(1)
        names = re.findall(r'<span class="en">([a-z_]+)</span></th>', header)
        for name, text in zip(names, outcomes[month][1:]):
            _shown(truth["outcomes"].get(name, 0), text)
        rankers = re.findall(r'<td data-ranker="([^"]+)">', re.search(
            rf'data-chart="hits">.*?<tr data-month="{month}">(.*?)</tr>', page, re.S).group(1))
        for ranker, cell in zip(rankers, hits[month][1:]):
            if cell == "—":
                assert ranker not in truth["labelled"] or not truth["labelled"][ranker]
                continue
            count, rate = cell.split(" · ", 1)
            _shown(truth["labelled"].get(ranker, 0), count)
            if _rate(rate) is not None:
                assert _rate(rate) == pytest.approx(truth["positive"][ranker] / truth["labelled"][ranker])
        seen_visits += truth["visited"]
    assert seen_visits, "the earlier lists were visited in the months after them"


def test_each_charts_bars_are_its_tables_numbers(pages):
    page = pages["trends"].text
    listed = _table(page, "listed")
    bars = _bars(_chart(page, "listed"))
    assert {m: v for (_, m), v in bars.items()} == {m: float(row[1]) for m, row in listed.items()}
    visited = _table(page, "visited")
    bars = _bars(_chart(page, "visited"))
    assert {m: v for (_, m), v in bars.items()} == pytest.approx(
        {m: _rate(row[2]) for m, row in visited.items() if _rate(row[2]) is not None})
    outcomes = _table(page, "outcomes")
    header = re.search(r'<table class="figures" data-chart="outcomes">\s*<tr>(.*?)</tr>', page, re.S).group(1)
    names = re.findall(r'<span class="en">([a-z_]+)</span></th>', header)
    drawn = _bars(_chart(page, "outcomes"))
    for (series, month), value in drawn.items():
        assert float(outcomes[month][1 + names.index(series.rsplit(" / ", 1)[1])]) == value
    hits_svg = _chart(page, "hits")
    rates = {}
    for month, row in _table(page, "hits").items():
        rankers = re.findall(r'<td data-ranker="([^"]+)">', re.search(
            rf'data-chart="hits">.*?<tr data-month="{month}">(.*?)</tr>', page, re.S).group(1))
        for ranker, cell in zip(rankers, row[1:]):
            if " · " in cell and _rate(cell.split(" · ", 1)[1]) is not None:
                rates[(ranker, month)] = _rate(cell.split(" · ", 1)[1])
    assert len(_bars(hits_svg)) == len(rates)
    assert sorted(_bars(hits_svg).values()) == pytest.approx(sorted(rates.values()))
    missing = hits_svg.findall("s:text[@class='missing']", NS)
    assert len(missing) + len(rates) == len(_table(page, "hits")) * len(re.findall(
        r"<th>[^<]*<br><span class=\"en\">labelled · hit rate", page))
    drift = _table(page, "drift")
    bars = _bars(_chart(page, "drift"))
    assert {m: v for (_, m), v in bars.items()} == {m: float(row[2]) for m, row in drift.items() if len(row) > 2}


def test_drift_is_what_each_months_report_recorded(site, pages):
    drift = _table(pages["trends"].text, "drift")
    for month, row in drift.items():
        report = runs.report_file(site.cfg, month).read_text(encoding="utf-8")
        section = report.split('<h2 id="drift">', 1)[1].split("<h2 ", 1)[0]
        flagged = re.findall(r'<tr class="flag">.*?<code>(.*?)</code>', section, re.S)
        if "against " + shift(month, -1) in section:
            assert row[1] == shift(month, -1) and int(row[2]) == len(flagged)
            assert all(f in row[4] for f in flagged)
        else:
            assert "記録なし" in row[1]


@pytest.mark.parametrize("name", ["aoki", "kato"])
def test_other_roles_cannot_open_the_analysts_pages(site, name):
    client = logged_in(site.app, name)
    for path in ("/analyst", "/analyst/trends"):
        assert client.get(path).status_code == 403


def test_no_pseudonym_name_or_resident_number_reaches_the_analyst(site, pages):
    needles, own = _needles(site)
    pids = set()
    for month in runs.months_run(site.cfg):
        pids |= set(read_parquet(runs.list_file(site.cfg, month), columns=["pid"])["pid"])
    for response in pages.values():
        text = response.content.decode()
        assert not scan_texts([text], needles)
        assert not [v for v in own if v in text]
        assert not [p for p in pids if p[:12] in text]
        assert "<script" not in text
