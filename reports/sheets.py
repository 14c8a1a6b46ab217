"""Visiting sheets: outreach.xlsx for the coordinator and the people who visit (custody zone only).

One sheet 「全体」 lists everyone in ward-wide priority order (for the coordinator's overview; it
has no entry columns, so each outcome is written in one place only), then one sheet per
district, rows in priority order, with an empty 訪問日 column and a 訪問結果 column whose
drop-down offers the data contract's outcomes. Print layout is set for A4 landscape: the header
row repeats on every page, columns are fitted to their content and the page to the paper's
width. Exploration picks (rows with `exploration` true) are marked and shaded.

The column set depends on the recipient (what each needs, and no more); the wording of reasons
and of 「確認したいこと」 (what to ask) comes from the feature catalogue via the list.
`pipelines.outcomes.import_outcomes` reads a returned sheet back.
"""
from __future__ import annotations

import html
import io
import math
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.datavalidation import DataValidation

from contract.sources import OUTCOME
from features.catalog import questions


@dataclass(frozen=True)
class SheetColumn:
    header: str                # Japanese header (the import reads these)
    min_width: float           # in Excel character units
    max_width: float           # longer content wraps
    number_format: str = "General"
    align: str = "left"


# Release column -> how it is shown. Widths are fitted to content between min and max.
COLUMNS: dict[str, SheetColumn] = {
    "rank": SheetColumn("順位", 5, 6, "0", "right"),
    "pick": SheetColumn("区分", 6, 10),
    "district": SheetColumn("地区", 8, 14),
    "resident_id": SheetColumn("宛名番号", 11, 13, "@"),
    "name": SheetColumn("氏名", 10, 18),
    "name_kana": SheetColumn("氏名カナ", 10, 20),
    "address": SheetColumn("住所", 20, 38),
    "phone": SheetColumn("電話番号", 12, 15, "@"),
    "age": SheetColumn("年齢", 5, 6, "0", "right"),
    "age_band": SheetColumn("年齢区分", 8, 10),
    "sex": SheetColumn("性別", 5, 8),
    "band": SheetColumn("優先度", 9, 11, "General", "right"),   # the rank band (「上位0.5%」), never the score
    "reasons": SheetColumn("訪問の理由", 24, 44),
    "questions": SheetColumn("確認したいこと", 20, 36),
    "reasons_en": SheetColumn("reasons (English)", 24, 40),
    "source": SheetColumn("作成方法", 8, 18),
    "visit_date": SheetColumn("訪問日", 11, 12, "yyyy/mm/dd"),
    "outcome": SheetColumn("訪問結果", 10, 10),
}
ENTRY = ["visit_date", "outcome"]
VISIT_DATE_HEADER, OUTCOME_HEADER, ID_HEADER, RANK_HEADER = "訪問日", "訪問結果", "宛名番号", "順位"

# What each recipient needs, and no more (APPI Art. 69(4); PPC Q&A 3-3-3 on 民生委員): 民生委員 get
# whom to visit and why, not the score or the 宛名番号; nurses, who follow up by phone, get contacts too.
# "questions" (what to ask) and "pick" (exploration mark) are added by outreach_workbook when
# the frame carries reason_features / exploration.
RECIPIENTS: dict[str, list[str]] = {
    "coordinator": ["rank", "district", "resident_id", "name", "address", "age", "sex", "band", "reasons",
                    "reasons_en", "source"],
    "minsei": ["rank", "district", "name", "address", "age_band", "reasons"],
    "nurse": ["rank", "district", "resident_id", "name", "name_kana", "address", "phone", "age", "sex", "band",
              "reasons"],
}

OVERVIEW = "全体"
EXPLORATION_JA = "探索"
PRIORITY_JA = "優先"
# The contract's outcomes in their Japanese spelling, in the contract's order.
OUTCOME_CHOICES: list[str] = []
for _spelling, _canonical in OUTCOME.items():
    if _spelling != _canonical and _canonical not in [OUTCOME[c] for c in OUTCOME_CHOICES]:
        OUTCOME_CHOICES.append(_spelling)

HEADER_FILL, EXPLORATION_FILL, ENTRY_FILL = "DDEBF7", "FFF2CC", "F2F2F2"
A4_LANDSCAPE_WIDTH_CHARS = 150   # printable width of A4 landscape at 100 %, narrow margins, in Excel chars
LINE_HEIGHT = 15.0               # points per wrapped line at 11 pt


def display_width(text: str) -> int:
    """Width in Excel character units: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _cell_text(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def layout_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The sheet's data columns for a recipient: the given ones, plus "what to ask" after the
    reasons and the exploration mark last, when the frame carries what they need."""
    out = [c for c in columns if c in COLUMNS and c not in ENTRY and c != "pick"]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"no sheet layout for column(s): {', '.join(unknown)}")
    if "reason_features" in frame.columns and "reasons" in out and "questions" not in out:
        out.insert(out.index("reasons") + 1, "questions")
    if "exploration" in frame.columns:
        out.append("pick")   # next to the entry columns; the row is shaded as well
    return out


def _prepare(frame: pd.DataFrame, data_columns: list[str]) -> pd.DataFrame:
    rows = frame.sort_values("rank", kind="stable").reset_index(drop=True).copy()
    if "questions" in data_columns and "questions" not in frame.columns:
        rows["questions"] = [questions(list(f) if f is not None else [])[0] for f in rows["reason_features"]]
    if "pick" in data_columns:
        rows["pick"] = [EXPLORATION_JA if bool(x) else PRIORITY_JA for x in rows["exploration"].fillna(False)]
    return rows


def _fitted_widths(rows: pd.DataFrame, columns: list[str]) -> list[float]:
    widths = []
    for column in columns:
        spec = COLUMNS[column]
        texts = [spec.header] + ([_cell_text(v, column) for v in rows[column]] if column in rows else [])
        longest = max((display_width(t) for t in texts), default=0) + 2
        widths.append(float(min(max(longest, spec.min_width), spec.max_width)))
    return widths


def _row_height(values: list[str], widths: list[float]) -> float:
    lines = max((math.ceil(display_width(v) / max(w - 1, 1)) if v else 1 for v, w in zip(values, widths)), default=1)
    return LINE_HEIGHT * max(lines, 1) + 3


def _write_sheet(book, title: str, rows: pd.DataFrame, data_columns: list[str], month: str, entry: bool) -> None:

    sheet = book.create_sheet(title=title[:31])
    layout = data_columns + (ENTRY if entry else [])
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    sheet.append([COLUMNS[c].header for c in layout])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = border
    widths = _fitted_widths(rows, data_columns) + [COLUMNS[c].max_width for c in ENTRY if entry]
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = width
    sheet.row_dimensions[1].height = LINE_HEIGHT + 5

    for r, record in enumerate(rows.to_dict("records"), start=2):
        texts = []
        for c, column in enumerate(layout, start=1):
            value = record.get(column) if column not in ENTRY else None
            if isinstance(value, float) and math.isnan(value):
                value = None
            if column in ("resident_id", "phone") and value is not None:
                value = str(value)   # leading zeros are significant
            cell = sheet.cell(row=r, column=c, value=value)
            spec = COLUMNS[column]
            cell.number_format = spec.number_format
            cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal=spec.align)
            cell.border = border
            if column in ENTRY:
                cell.fill = PatternFill("solid", fgColor=ENTRY_FILL)
            elif record.get("pick") == EXPLORATION_JA:
                cell.fill = PatternFill("solid", fgColor=EXPLORATION_FILL)
            texts.append(_cell_text(value, column))
        sheet.row_dimensions[r].height = _row_height(texts, widths)

    last = max(len(rows) + 1, 2)
    if entry:
        date_col = sheet.cell(row=1, column=layout.index("visit_date") + 1).column_letter
        outcome_col = sheet.cell(row=1, column=layout.index("outcome") + 1).column_letter
        choice = DataValidation(type="list", formula1='"' + ",".join(OUTCOME_CHOICES) + '"', allow_blank=True,
                                showDropDown=False, showErrorMessage=True, errorTitle="訪問結果",
                                error="一覧から選んでください: " + "・".join(OUTCOME_CHOICES),
                                showInputMessage=True, promptTitle="訪問結果",
                                prompt="一覧から選択: " + "・".join(OUTCOME_CHOICES))
        sheet.add_data_validation(choice)
        choice.add(f"{outcome_col}2:{outcome_col}{last}")
        when = DataValidation(showInputMessage=True, promptTitle="訪問日",
                              prompt="例: 2026/11/05 または 令和8年11月5日", allow_blank=True)
        sheet.add_data_validation(when)
        when.add(f"{date_col}2:{date_col}{last}")
        sheet.cell(row=1, column=layout.index("outcome") + 1).comment = Comment(
            "訪問後に記入してください。要支援＝支援が必要、問題なし＝心配なし、不在＝会えなかった、拒否＝訪問を断られた。"
            "空欄の行は取り込まれません。", "mimamori")
    if "band" in layout:
        sheet.cell(row=1, column=layout.index("band") + 1).comment = Comment(
            "今月の掲載可能な方の中での位置です（例：上位0.5%＝高い方から200人に1人）。確率ではありません。", "mimamori")
    if "pick" in layout:
        sheet.cell(row=1, column=layout.index("pick") + 1).comment = Comment(
            "探索＝リストの確かさを確かめるため、優先度によらず選ばれた方です。訪問の仕方は他の方と同じです。", "mimamori")

    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"
    sheet.print_options.horizontalCentered = True
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.page_margins.top = sheet.page_margins.bottom = 0.6
    sheet.page_margins.header = sheet.page_margins.footer = 0.3
    sheet.oddHeader.center.text = f"見守り訪問リスト {month}（{title}）　取扱注意・個人情報"
    sheet.oddFooter.center.text = "&P / &N ページ"
    sheet.oddFooter.right.text = "訪問するかどうかは担当者が判断します"


def outreach_workbook(frame: pd.DataFrame, month: str, columns: Sequence[str] | str = "coordinator"):
    """The visiting workbook for one recipient (an openpyxl Workbook, in memory).

    frame: the released rows (rank, district, resident_id, name, address, age, sex, band, reasons,
    reasons_en, source, …; optional `exploration` bool and `reason_features` list columns).
    columns: a recipient in RECIPIENTS or an explicit list of column keys (see COLUMNS).
    """
    wanted = RECIPIENTS[columns] if isinstance(columns, str) else list(columns)
    data_columns = layout_columns(frame, wanted)
    rows = _prepare(frame, data_columns)
    book = Workbook()
    book.remove(book.active)
    _write_sheet(book, OVERVIEW, rows, data_columns, month, entry=False)
    for district, group in rows.groupby("district", sort=True):
        _write_sheet(book, str(district), group, data_columns, month, entry=True)
    book.properties.title = f"見守り訪問リスト {month}"
    book.properties.creator = "mimamori"
    return book


def workbook_bytes(book) -> bytes:
    """The workbook as an .xlsx file's bytes."""
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------ layout checks and preview

def layout_problems(book) -> list[str]:
    """What is wrong with a workbook's print layout and entry columns (empty when it is fine)."""
    problems = []
    if book.sheetnames[0] != OVERVIEW:
        problems.append(f"the first sheet is {book.sheetnames[0]!r}, not {OVERVIEW!r}")
    for sheet in book.worksheets:
        name = sheet.title
        headers = [c.value for c in sheet[1]]
        setup = sheet.page_setup
        if setup.orientation != "landscape" or str(setup.paperSize) != str(sheet.PAPERSIZE_A4):
            problems.append(f"{name}: not A4 landscape")
        if not sheet.sheet_properties.pageSetUpPr.fitToPage or setup.fitToWidth != 1:
            problems.append(f"{name}: not fitted to one page wide")
        if sheet.print_title_rows != "$1:$1" and sheet.print_title_rows != "1:1":
            problems.append(f"{name}: the header row does not repeat on each page ({sheet.print_title_rows})")
        for i, header in enumerate(headers, start=1):
            letter = sheet.cell(row=1, column=i).column_letter
            width = sheet.column_dimensions[letter].width
            if header is None:
                problems.append(f"{name}: column {letter} has no header")
                continue
            if width is None or width < display_width(str(header)) + 1:
                problems.append(f"{name}: column {letter} ({header}) is narrower than its header")
            for row in range(2, sheet.max_row + 1):
                value = sheet.cell(row=row, column=i).value
                if value is None:
                    continue
                lines = sheet.row_dimensions[row].height or LINE_HEIGHT
                room = (width - 1) * max(int(lines // LINE_HEIGHT), 1)
                if display_width(str(value) if not isinstance(value, float) else f"{value:.3f}") > room + 2:
                    problems.append(f"{name}: row {row} column {header} is cut off")
        if name == OVERVIEW:
            continue
        if OUTCOME_HEADER not in headers or VISIT_DATE_HEADER not in headers:
            problems.append(f"{name}: no {VISIT_DATE_HEADER}/{OUTCOME_HEADER} columns")
            continue
        outcome_letter = sheet.cell(row=1, column=headers.index(OUTCOME_HEADER) + 1).column_letter
        lists = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"]
        covered = any(f"{outcome_letter}2" in str(dv.sqref) for dv in lists)
        if not covered:
            problems.append(f"{name}: {OUTCOME_HEADER} has no drop-down")
        elif sorted(lists[0].formula1.strip('"').split(",")) != sorted(OUTCOME_CHOICES):
            problems.append(f"{name}: the drop-down does not offer the contract's outcomes")
        for row in range(2, sheet.max_row + 1):
            for header in (VISIT_DATE_HEADER, OUTCOME_HEADER):
                if sheet.cell(row=row, column=headers.index(header) + 1).value is not None:
                    problems.append(f"{name}: row {row} {header} is not empty")
    return problems


def preview_html(book, sheet_name: str | None = None) -> str:
    """An HTML rendering of one sheet as it would print (widths, fills, wrapping, header row),
    for screenshots where LibreOffice is not installed."""
    sheet = book[sheet_name] if sheet_name else book.worksheets[1 if len(book.worksheets) > 1 else 0]
    px_per_char = 7.5
    cols = []
    for i in range(1, sheet.max_column + 1):
        width = sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width or 8.43
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
            cells.append(f'<td style="{style}">{html.escape(text)}</td>')
        height = sheet.row_dimensions[r].height or LINE_HEIGHT
        body.append(f'<tr style="height:{height * 1.33:.0f}px">{"".join(cells)}</tr>')
    header = html.escape(sheet.oddHeader.center.text or "")
    return ("<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'><style>"
            "body{font-family:'IPAPGothic','Noto Sans CJK JP',sans-serif;font-size:12px;margin:16px;background:#fff}"
            "table{border-collapse:collapse;table-layout:fixed}td{border:1px solid #999;padding:2px 4px;"
            "vertical-align:top;overflow:hidden;word-break:break-all}.h{text-align:center;margin:4px 0 8px}"
            f"</style></head><body><div class='h'>{header}</div><table>{''.join(cols)}{''.join(body)}</table>"
            f"<p style='font-size:10px;color:#666'>sheet「{html.escape(sheet.title)}」 A4 landscape preview</p></body></html>")
