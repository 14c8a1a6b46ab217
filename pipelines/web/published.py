"""Sections of a month's published report, read back as blocks and tables for the auditor's pages.

The fairness tables and the data-quality tables are made once, by the batch, from what the run
held in memory, and every count and rate in them has been through the report's one disclosure
pass (reports/disclosure.py: small counts `<10`, complementary `x`, rates with their counts and
Wilson interval). Nothing outside the report holds them as disclosed: training.json keeps the
holdout audit's raw counts, and this month's audit is never stored at all. So the web pages read
the published report itself (its digest checked by `runs.completed_run`) and show exactly its
cells, never recomputing a figure and so never opening a cell the report suppressed.

`report_section(html, "fairness")` returns the section's headings, sentences and tables in order,
as plain text (the pages render them autoescaped, in the app's own style).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Cell:
    text: str                      # lines joined by "\n" where the report breaks them (<br>)
    header: bool = False
    colspan: int = 1


@dataclass
class Block:
    kind: str                      # "heading", "text", "item" (a bullet) or "table"
    text: str = ""
    rows: list[list[Cell]] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)   # per row: the report marks it red (a fairness flag)


class _Section(HTMLParser):
    """Collects one <h2 id=...> section (up to the next <h2>) of the report."""

    TEXT = {"h3": "heading", "summary": "heading", "p": "text", "li": "item"}

    def __init__(self, section: str):
        super().__init__(convert_charrefs=True)
        self.section, self.inside, self.found = section, False, False
        self.blocks: list[Block] = []
        self.table: Block | None = None
        self.cell: Cell | None = None
        self.open: tuple[str, list[str]] | None = None     # a heading/text block being read

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        if tag == "h2":
            self._close_text()
            self.inside = attrs.get("id") == self.section
            self.found = self.found or self.inside
            return
        if not self.inside:
            return
        if tag == "table":
            self._close_text()
            self.table = Block("table")
        elif tag == "tr" and self.table is not None:
            self.table.rows.append([])
            self.table.flagged.append("flag" in (attrs.get("class") or "").split())
        elif tag in ("td", "th") and self.table is not None and self.table.rows:
            self.cell = Cell("", header=tag == "th", colspan=int(attrs.get("colspan") or 1))
        elif tag == "br":
            self._write("\n")
        elif tag in self.TEXT and self.table is None:
            self._close_text()
            self.open = (self.TEXT[tag], [])

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.cell.text = "\n".join(" ".join(line.split()) for line in self.cell.text.split("\n")).strip("\n")
            self.table.rows[-1].append(self.cell)
            self.cell = None
        elif tag == "table" and self.table is not None:
            self.blocks.append(self.table)
            self.table = None
        elif tag in self.TEXT and self.table is None:
            self._close_text()

    def handle_data(self, data: str) -> None:
        if self.inside:
            self._write(data)

    def _write(self, text: str) -> None:
        if self.cell is not None:
            self.cell.text += text
        elif self.open is not None:
            self.open[1].append(text)

    def _close_text(self) -> None:
        if self.open is not None:
            kind, parts = self.open
            text = "\n".join(" ".join(line.split()) for line in "".join(parts).split("\n")).strip()
            if text:
                self.blocks.append(Block(kind, text))
            self.open = None


def report_section(html: str, section: str) -> list[Block] | None:
    """The blocks of the report's section `section` (its <h2 id>); None when the report has none."""
    parser = _Section(section)
    parser.feed(html)
    parser.close()
    parser._close_text()
    return parser.blocks if parser.found else None
