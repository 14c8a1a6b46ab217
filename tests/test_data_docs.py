"""The Data Docs open offline and say what the validation results say (issue 14, finding 8).

GX's own site loaded 17 resources from CDNs and drew its index with JavaScript: on an offline PC
the index was blank. The session ward's site is opened in headless Chromium with every non-file
request aborted and recorded; what it shows is checked against the validation JSON it was built
from. A plain test (no browser) checks that no page references a network resource at all.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expectations.suite_spec import all_suites
from pipelines.browser import offline_page
from pipelines.catalog import validation
from reports.data_docs import data_docs_pages

# Anything that makes a browser fetch: an absolute or protocol-relative URL in src/href/srcset/
# action/poster/data, a CSS url() or @import of one, or any script at all.
_REMOTE = re.compile(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
                     r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<script|<link[^>]+stylesheet""", re.I)


def _site(ward):
    return validation.docs_dir(ward.cfg.work, ward.month)


def _results(ward) -> dict[str, dict]:
    folder = validation.results_dir(ward.cfg.work, ward.month)
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def test_no_page_references_a_network_resource_or_a_script(ward):
    pages = sorted(_site(ward).rglob("*.html"))
    for page in pages:
        found = _REMOTE.findall(page.read_text(encoding="utf-8"))
        assert found == [], f"{page.name} would fetch {found}"
    assert {p.relative_to(_site(ward)).as_posix() for p in pages} == {
        "index.html", *(f"validations/{name}.html" for name in _results(ward))}
    assert [p.name for p in _site(ward).rglob("*") if p.is_file() and p.suffix != ".html"] == []   # no assets


def _row_cells(page, selector: str) -> list[str]:
    return [c.strip() for c in page.locator(selector).locator("td").all_inner_texts()]


def test_the_index_and_every_validation_page_render_offline_what_the_results_say(ward, browser):
    results, site = _results(ward), _site(ward)
    record = validation.lake.delivery_record(ward.cfg.lake, ward.month)
    assert {"residents", "features"} <= set(results)
    with offline_page(browser) as offline:
        index = offline.open(site / "index.html")
        assert offline.blocked == []
        assert index.title() == f"データ品質検査 Data Docs {ward.month}"
        for name, result in results.items():
            cells = _row_cells(index, f'#suites tr[data-suite="{name}"]')
            evaluated = result["statistics"]["evaluated_expectations"]
            failed = result["statistics"]["unsuccessful_expectations"]
            assert cells[0] == name and cells[4] == str(evaluated) and cells[5] == str(failed), (name, cells)
            assert ("合格" if result["success"] else "不合格") in cells[3].split()
            counts = record["validation"]["sources"].get(name)
            if counts is not None:       # a delivered table: its file and quarantine counts from the record
                assert cells[2] == record["sources"][name]["file"]
                assert cells[8:] == [f"{counts['rows']:,d}", str(counts["quarantined_contract"]),
                                     str(counts["quarantined_validation"])], (name, cells)
        for name in set(all_suites()) - set(results):      # every suite is named, run or not
            assert index.locator(f'#not-run tr[data-suite="{name}"]').count() == 1

        for name, result in results.items():
            page = offline.open(site / "validations" / f"{name}.html")
            assert page.locator("h1").inner_text().startswith(f"{name}（")
            rows = page.locator("#expectations tr[data-check]")
            assert rows.count() == len(result["results"])
            for i, expected in enumerate(result["results"]):
                cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
                meta, outcome = expected["expectation_config"]["meta"], expected["result"]
                assert cells[1] == meta["check"] and meta["description_ja"] in cells[2]
                assert ("合格" if expected["success"] else "不合格") in cells[6].split()
                if "unexpected_count" in outcome:
                    assert cells[8] == f"{outcome['unexpected_count']:,d}"
                    assert cells[9] == f"{outcome['element_count']:,d}"
                if isinstance(outcome.get("observed_value"), int):
                    assert cells[7] == f"{outcome['observed_value']:,d}"
        # the index links every validated suite to its page
        hrefs = offline.open(site / "index.html").locator("#suites a").evaluate_all("a => a.map(e => e.href)")
        assert sorted(hrefs) == sorted((site / "validations" / f"{n}.html").as_uri() for n in results)
    assert offline.blocked == []


def _result(check: str, policy: str, kind: str, success: bool, outcome: dict) -> dict:
    return {"success": success, "exception_info": {"raised_exception": False},
            "expectation_config": {"type": kind, "kwargs": {"column": "amount_paid", "min_value": 0},
                                   "meta": {"check": check, "policy": policy, "description": f"{check} holds",
                                            "description_ja": f"{check}が成り立つ"}},
            "result": outcome}


@settings(max_examples=40, deadline=None)
@given(unexpected=st.integers(0, 10**6), rows=st.integers(0, 10**6), mean=st.floats(0, 1e6),
       secret=st.from_regex(r"[A-Za-z]{6,12}", fullmatch=True), contract=st.integers(0, 500))
def test_a_page_shows_counts_and_reasons_never_a_value(unexpected, rows, mean, secret, contract):
    """Whatever a result carries, a page shows counts, aggregates and the schema, never a string
    observed by a value check (it could be a name), nor an exception's message."""
    results = {"care_premiums": {"success": False, "statistics": {}, "results": [
        _result("care_premiums.amount_paid.within_due", "quarantine", "expect_column_values_to_be_between", False,
                {"unexpected_count": unexpected, "element_count": rows, "observed_value": secret}),
        _result("care_premiums.amount_paid.mean", "warning", "expect_column_mean_to_be_between", True,
                {"observed_value": mean}),
        {**_result("care_premiums.x.raised", "critical", "expect_column_values_to_match_regex", False, {}),
         "exception_info": {"raised_exception": True, "exception_message": f"bad value {secret}"}}]}}
    delivered = {"care_premiums": {"file": "care_premiums.csv", "rows": rows + contract, "contract": contract,
                                   "validation": unexpected, "reasons": {"amount_due: negative": contract}}}
    page = data_docs_pages("2026-10", results, {"care_premiums": 3, "checkups": 12}, delivered)[
        "validations/care_premiums.html"]
    assert secret not in page
    assert f"<td class=\"n\">{unexpected:,d}</td>" in page and f"{mean:,.4g}" in page
    assert "amount_due（調定額）が負の値" in page and "amount_due: negative" in page      # the contract's reason, both languages
    assert "検証：care_premiums.amount_paid.within_dueが成り立つ" in page       # validation's reason, from its check
    assert page.count(f"<td class=\"n\">{contract:,d}</td>") >= 2             # counted in the summary and by reason
    index = data_docs_pages("2026-10", results, {"care_premiums": 3, "checkups": 12}, delivered)["index.html"]
    assert 'data-suite="checkups"' in index and 'href="validations/checkups.html"' not in index


@pytest.mark.parametrize("observed,shown", [(["pid", "age"], "pid, age"), ("int64", "int64")])
def test_schema_observations_are_shown(observed, shown):
    kind = "expect_table_columns_to_match_set" if isinstance(observed, list) else "expect_column_values_to_be_of_type"
    results = {"residents": {"success": True, "results": [_result("residents.x", "critical", kind, True,
                                                                  {"observed_value": observed})]}}
    page = data_docs_pages("2026-10", results, {"residents": 1}, {})["validations/residents.html"]
    assert f'<td class="rule">{shown}</td>' in page


def test_screenshots_shoot_the_month_offline_and_refuse_a_page_that_fetches(ward, browser, tmp_path):
    from PIL import Image

    from pipelines.screenshots import PageFetched, month_pages, shoot_html

    pages = month_pages(ward.cfg, ward.month)
    assert {"report.png", "data_docs.png"} <= set(pages)
    for name, page in pages.items():
        shot = Image.open(shoot_html(browser, page, tmp_path / name)).convert("L")
        assert shot.width == 1280 and shot.height >= 900 and np.asarray(shot).std() > 20, name   # something drawn
    assert Image.open(tmp_path / "report.png").height > 3000              # the whole page, not the window
    fetching = tmp_path / "cdn.html"
    fetching.write_text('<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/x.css"><p>x</p>', encoding="utf-8")
    with pytest.raises(PageFetched, match="cdn.jsdelivr.net"):
        shoot_html(browser, fetching, tmp_path / "cdn.png")
