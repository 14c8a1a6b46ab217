"""The report's line accounting says what the delivery record says, and it adds up."""
from __future__ import annotations

import html
import re

from pipelines.catalog import lake
from reports.report import LINE_TERMS

NUMBER = r"([\d,]+)"


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def test_every_delivered_file_s_lines_are_shown_and_add_up_to_the_record(ward):
    page = html.unescape((ward.cfg.runs / ward.month / "report" / "index.html").read_text(encoding="utf-8"))
    section = page[page.index('<h2 id="quality">'):]
    section = section[:section.index("<h2", 1)]
    record = lake.delivery_record(ward.cfg.lake, ward.month)
    assert record["sources"]
    for name, source in record["sources"].items():
        lines = source["lines"]
        row = re.search(rf"<small>{name}</small></td><td>.*?</tr>", section, flags=re.S)
        assert row, f"{name} has no row in the report's data section"
        cell = re.search(rf"(?:物理行|行) {NUMBER} ＝ (.*?)<br>", row.group(0))
        assert cell, f"{name}: no line accounting in its row"
        assert _n(cell.group(1)) == lines["physical"]
        shown = {ja: _n(n) for ja, n in re.findall(rf"(\S+) {NUMBER}", cell.group(2))}
        expected = {ja: int(lines[kind]) for kind, ja, _ in LINE_TERMS if int(lines[kind])}
        assert shown == expected
        assert sum(shown.values()) == lines["physical"]
        english = re.search(rf"{NUMBER} (?:physical lines|rows) = (.*?)</span>", row.group(0))
        assert english and _n(english.group(1)) == lines["physical"]
