"""Checks of a visiting workbook as it will print and be filled in, and an HTML preview of it.

`printed_font_pt` is what a page fitted to A4 landscape's width prints its 11 pt text at, from
the sheet's own column widths, margins and print setup (not from what reports/sheets.py meant
to set); `layout_problems` lists every way a workbook falls short of being usable on paper.
"""
from __future__ import annotations

import html

from openpyxl.utils import get_column_letter

from reports.sheets import (A4_LANDSCAPE_INCHES, BASE_PT, ENTRY, LINE_HEIGHT, NOTE_HEADER, OUTCOME_CHOICES,
                            OUTCOME_HEADER, OVERVIEW, PRINT_MIN_PT, PX_PER_INCH, PX_PER_WIDTH, VISIT_DATE_HEADER,
                            COLUMNS, display_width)

DEFAULT_WIDTH = 8.43 + 0.71   # an unset column (Excel's default, padding included)


def printed_font_pt(sheet) -> float:
    """The size BASE_PT text prints at on this sheet's paper: fitted to one page wide, the page
    shrinks by printable width / sheet width when the sheet is wider; otherwise its scale."""
    widths = [sheet.column_dimensions[get_column_letter(i)].width or DEFAULT_WIDTH
              for i in range(1, sheet.max_column + 1)]
    sheet_px = sum(widths) * PX_PER_WIDTH
    margins = (sheet.page_margins.left or 0) + (sheet.page_margins.right or 0)
    paper = A4_LANDSCAPE_INCHES if sheet.page_setup.orientation == "landscape" else 210 / 25.4
    printable_px = (paper - margins) * PX_PER_INCH
    if sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToWidth == 1:
        scale = min(1.0, printable_px / sheet_px)
    else:
        scale = (sheet.page_setup.scale or 100) / 100
    return BASE_PT * scale


def _cut_off(sheet, name: str, headers: list) -> list[str]:
    problems = []
    for i, header in enumerate(headers, start=1):
        width = sheet.column_dimensions[get_column_letter(i)].width or DEFAULT_WIDTH
        for row in range(2, sheet.max_row + 1):
            value = sheet.cell(row=row, column=i).value
            if value is None:
                continue
            lines = max(int((sheet.row_dimensions[row].height or LINE_HEIGHT) // LINE_HEIGHT), 1)
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            needed = sum(-(-display_width(part) // max(int(width - 1), 1)) or 1 for part in text.split("\n"))
            if needed > lines:
                problems.append(f"{name}: row {row} column {header} is cut off")
    return problems


def layout_problems(book) -> list[str]:
    """What is wrong with a workbook's print layout and entry columns (empty when it is fine)."""
    problems = []
    if OVERVIEW in book.sheetnames and book.sheetnames[0] != OVERVIEW:
        problems.append(f"{OVERVIEW!r} is not the first sheet")
    entry_headers = [COLUMNS[c].header for c in ENTRY]
    for sheet in book.worksheets:
        name = sheet.title
        headers = [c.value for c in sheet[1]]
        setup = sheet.page_setup
        if setup.orientation != "landscape" or str(setup.paperSize) != str(sheet.PAPERSIZE_A4):
            problems.append(f"{name}: not A4 landscape")
        if not sheet.sheet_properties.pageSetUpPr.fitToPage or setup.fitToWidth != 1:
            problems.append(f"{name}: not fitted to one page wide")
        if printed_font_pt(sheet) < PRINT_MIN_PT:
            problems.append(f"{name}: prints at {printed_font_pt(sheet):.1f} pt, under {PRINT_MIN_PT:g} pt")
        if sheet.print_title_rows not in ("$1:$1", "1:1"):
            problems.append(f"{name}: the header row does not repeat on each page ({sheet.print_title_rows})")
        if sheet.freeze_panes != "A2" or not sheet.auto_filter.ref:
            problems.append(f"{name}: the header row is not frozen with an autofilter")
        if "&P" not in (sheet.oddFooter.center.text or ""):
            problems.append(f"{name}: the footer does not number the pages")
        small = [c.coordinate for row in sheet.iter_rows() for c in row if (c.font.sz or BASE_PT) < BASE_PT]
        if small:
            problems.append(f"{name}: cell {small[0]} is set smaller than {BASE_PT:g} pt")
        header_lines = max(int((sheet.row_dimensions[1].height or LINE_HEIGHT) // LINE_HEIGHT), 1)
        for i, header in enumerate(headers, start=1):
            width = sheet.column_dimensions[get_column_letter(i)].width or DEFAULT_WIDTH
            if header is None:
                problems.append(f"{name}: column {get_column_letter(i)} has no header")
            elif display_width(str(header)) > header_lines * (width - 1.5):   # as reports.sheets._lines
                problems.append(f"{name}: column {get_column_letter(i)} ({header}) is narrower than its header")
        problems += _cut_off(sheet, name, headers)
        if name == OVERVIEW:
            continue
        if any(h not in headers for h in entry_headers):
            problems.append(f"{name}: no {'/'.join(entry_headers)} columns")
            continue
        outcome_letter = get_column_letter(headers.index(OUTCOME_HEADER) + 1)
        lists = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"]
        if not any(f"{outcome_letter}2" in str(dv.sqref) for dv in lists):
            problems.append(f"{name}: {OUTCOME_HEADER} has no drop-down")
        elif lists[0].formula1.strip('"').split(",") != OUTCOME_CHOICES:
            problems.append(f"{name}: the drop-down does not offer the contract's outcomes")
        for row in range(2, sheet.max_row + 1):
            for header in (VISIT_DATE_HEADER, OUTCOME_HEADER, NOTE_HEADER):
                if sheet.cell(row=row, column=headers.index(header) + 1).value is not None:
                    problems.append(f"{name}: row {row} {header} is not empty")
    return problems


def preview_html(book, sheet_name: str | None = None) -> str:
    """An HTML rendering of one sheet as it would print (widths, fills, wrapping, header row),
    for screenshots where LibreOffice is not installed."""
    sheet = book[sheet_name] if sheet_name else book.worksheets[1 if len(book.worksheets) > 1 else 0]
    px_per_char = PX_PER_WIDTH
    cols = []
    for i in range(1, sheet.max_column + 1):
        width = sheet.column_dimensions[get_column_letter(i)].width or DEFAULT_WIDTH
        cols.append(f'<col style="width:{width * px_per_char:.0f}px">')
    body = []
    for r, row in enumerate(sheet.iter_rows(), start=1):
        cells = []
        for cell in row:
            fill = cell.fill.fgColor.rgb if cell.fill is not None and cell.fill.fill_type == "solid" else None
            style = f"background:#{str(fill)[-6:]};" if fill else ""
            style += "font-weight:bold;text-align:center;" if r == 1 else ""
            style += f"text-align:{cell.alignment.horizontal};" if r > 1 and cell.alignment.horizontal else ""
            value = cell.value
            text = "" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
            cells.append(f'<td style="{style}">{html.escape(text).replace(chr(10), "<br>")}</td>')
        height = sheet.row_dimensions[r].height or LINE_HEIGHT
        body.append(f'<tr style="height:{height * 1.33:.0f}px">{"".join(cells)}</tr>')
    header = html.escape(sheet.oddHeader.center.text or "")
    return ("<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'><style>"
            "body{font-family:'IPAPGothic','Noto Sans CJK JP',sans-serif;font-size:11pt;margin:16px;background:#fff}"
            "table{border-collapse:collapse;table-layout:fixed}td{border:1px solid #999;padding:1px 3px;"
            "vertical-align:top;overflow:hidden;word-break:break-all}.h{text-align:center;margin:4px 0 8px}"
            f"</style></head><body><div class='h'>{header}</div><table>{''.join(cols)}{''.join(body)}</table>"
            f"<p style='font-size:10px;color:#666'>sheet「{html.escape(sheet.title)}」 A4 landscape preview "
            f"({printed_font_pt(sheet):.1f} pt printed)</p></body></html>")
