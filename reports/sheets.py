"""Visiting sheets: outreach.xlsx for the coordinator and the people who visit (custody zone only).

One sheet per district, its people in priority order: 順位 is the order within the district
(1, 2, 3, …) and 区全体順位 the ward-wide rank beside it. Each row has entry columns: 訪問担当者
(who is assigned, written by the coordinator), 訪問日, 訪問結果 (a drop-down of the data
contract's outcomes) and 特記事項 (a free note). The coordinator's workbook starts with a sheet
「全体」 listing everyone in ward-wide order (it has no entry columns, so each outcome is written
in one place only). Which columns, and how reasons are worded, depends on the recipient
(reports/recipients.py). Exploration picks are marked 探索 and shaded.

Paper: every sheet prints on A4 landscape at 10 pt or more. Columns are fitted to their content
between a minimum and a maximum and then narrowed (wrapping more lines) until the page's width
needs no shrinking below PRINT_MIN_PT; `printed_font_pt` computes the size a fitted page prints
at from the column widths and the margins. The header row repeats on every page and is frozen,
with an autofilter; the footer numbers the pages. `pipelines.outcomes.import_outcomes` reads a
returned sheet back (by 宛名番号, or by 区全体順位 where a recipient has no 宛名番号).
"""
from __future__ import annotations

import io
import math
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from reports.recipients import EXPLORATION_JA, OUTCOME_JA, RECIPIENTS, Recipient, recipient_rows


@dataclass(frozen=True)
class SheetColumn:
    header: str                # Japanese header (the import reads 宛名番号, 区全体順位, 訪問日, 訪問結果, 特記事項)
    min_width: float           # in Excel character units (a CJK character is two)
    max_width: float           # longer content wraps
    number_format: str = "General"
    align: str = "left"
    stack: tuple[str, ...] = ()  # released columns shown one per line in this cell


# Column key -> how it is shown. Widths are fitted to content between min and max.
COLUMNS: dict[str, SheetColumn] = {
    "order": SheetColumn("順位", 6, 6, "0", "right"),
    "rank": SheetColumn("区全体順位", 7, 7, "0", "right"),
    "pick": SheetColumn("区分", 6, 6),
    "district": SheetColumn("地区", 8, 12),
    "resident_id": SheetColumn("宛名番号", 13, 13, "@"),
    "name": SheetColumn("氏名", 10, 14),
    "name_kana": SheetColumn("フリガナ", 10, 14),
    "kana_name": SheetColumn("フリガナ・氏名", 10, 14, stack=("name_kana", "name")),
    "address": SheetColumn("住所", 16, 30),
    "phone": SheetColumn("電話番号", 13, 13, "@"),
    "address_phone": SheetColumn("住所・電話番号", 16, 30, stack=("address", "phone")),
    "age": SheetColumn("年齢", 6, 6, "0", "right"),
    "age_band": SheetColumn("年齢区分", 10, 10),
    "sex": SheetColumn("性別", 6, 6),
    "band": SheetColumn("優先度", 9, 11, "General", "right"),   # the rank band (「上位0.5%」), never the score
    "reasons": SheetColumn("訪問の理由", 18, 40),
    "questions": SheetColumn("確認したいこと", 14, 30),
    "previous_visit": SheetColumn("前回訪問", 12, 12),
    "visitor": SheetColumn("訪問担当者", 10, 10),
    "visit_date": SheetColumn("訪問日", 11, 11, "yyyy/mm/dd"),
    "outcome": SheetColumn("訪問結果", 10, 10),
    "note": SheetColumn("特記事項", 13, 13),
}
ENTRY = ["visitor", "visit_date", "outcome", "note"]
OVERVIEW_ONLY = {"district", "band"}   # a district sheet is its district; the order there is the priority
VISIT_DATE_HEADER, OUTCOME_HEADER, NOTE_HEADER = "訪問日", "訪問結果", "特記事項"
ID_HEADER, RANK_HEADER, ORDER_HEADER = "宛名番号", "区全体順位", "順位"

OVERVIEW = "全体"
OUTCOME_CHOICES: list[str] = list(OUTCOME_JA.values())   # the contract's outcomes, in its order

HEADER_FILL, EXPLORATION_FILL, ENTRY_FILL = "DDEBF7", "FFF2CC", "F2F2F2"
# Print geometry. Column widths are in units of the workbook font's digit width (Calibri 11:
# 7 px at 96 px per inch); A4 landscape is 297 mm wide; a page fitted to its width prints at
# BASE_PT × (printable width / sheet width) when the sheet is wider than the paper.
BASE_PT, PRINT_MIN_PT, PRINT_TARGET_PT = 11.0, 10.0, 10.2
PX_PER_WIDTH, PX_PER_INCH, A4_LANDSCAPE_INCHES = 7.0, 96.0, 297 / 25.4
SIDE_MARGIN_INCHES = 0.4
LINE_HEIGHT = 15.0               # points per wrapped line at 11 pt


def display_width(text: str) -> int:
    """Width in Excel character units: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _cell_text(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _stacked(spec: SheetColumn, columns: list[str]) -> list[str]:
    return [c for c in spec.stack if c in columns]


def sheet_columns(columns: Sequence[str], overview: bool) -> list[str]:
    """A sheet's data columns from a recipient's row columns: 順位 first; on a district sheet the
    ward rank beside it and no district or rank band; stacked cells where both parts are present."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"no sheet layout for column(s): {', '.join(unknown)}")
    out = [c for c in columns if c not in ENTRY and c not in ("order", "rank")]
    out = ["order"] + ([] if overview else ["rank"]) + [c for c in out if overview or c not in OVERVIEW_ONLY]
    for key, spec in COLUMNS.items():
        if spec.stack and len(_stacked(spec, out)) == len(spec.stack):
            at = min(out.index(c) for c in spec.stack)
            out = [c for c in out if c not in spec.stack]
            out.insert(at, key)
    return out


def _values(rows: pd.DataFrame, layout: list[str], overview: bool) -> pd.DataFrame:
    """The cells' values, one column per layout key (entry columns empty)."""
    out = pd.DataFrame(index=rows.index)
    for column in layout:
        spec = COLUMNS[column]
        if column == "order":
            out[column] = rows["rank"].to_numpy() if overview else range(1, len(rows) + 1)
        elif spec.stack:
            out[column] = ["\n".join(_cell_text(r[c], c) for c in spec.stack if _cell_text(r[c], c))
                           for r in rows[list(spec.stack)].to_dict("records")]
        elif column in ENTRY or column not in rows:
            out[column] = None
        elif column in ("resident_id", "phone"):
            out[column] = [None if not _cell_text(v, column) else str(v) for v in rows[column]]  # zeros count
        else:
            out[column] = rows[column].astype("object").where(rows[column].notna(), None)
    return out


def _lines(text: str, width: float) -> int:
    room = max(width - 1.5, 1)   # a CJK glyph prints slightly wider than two digits
    return sum(max(math.ceil(display_width(part) / room), 1) for part in text.split("\n")) if text else 1


def print_budget_width(target_pt: float = PRINT_TARGET_PT) -> float:
    """The total column width a sheet may have to print at `target_pt` on A4 landscape."""
    printable = (A4_LANDSCAPE_INCHES - 2 * SIDE_MARGIN_INCHES) * PX_PER_INCH
    return printable / PX_PER_WIDTH * BASE_PT / target_pt


def _fitted_widths(values: pd.DataFrame, layout: list[str]) -> list[float]:
    """Widths fitted to content between each column's min and max, then the wrapping columns
    narrowed in proportion to their slack until the sheet fits print_budget_width()."""
    widths = []
    for column in layout:
        spec = COLUMNS[column]
        texts = [spec.header] if spec.stack else []
        texts += [line for v in values[column] for line in _cell_text(v, column).split("\n")]
        longest = max((display_width(t) for t in texts), default=0) + 2
        widths.append(float(min(max(longest, spec.min_width), spec.max_width)))
    excess = sum(widths) - print_budget_width()
    slack = [w - COLUMNS[c].min_width for w, c in zip(widths, layout)]
    if excess > 0 and sum(slack) > 0:
        share = min(excess / sum(slack), 1.0)
        widths = [round(w - s * share, 1) for w, s in zip(widths, slack)]
    return widths


def _write_sheet(book, title: str, rows: pd.DataFrame, columns: list[str], month: str, overview: bool) -> None:
    sheet = book.create_sheet(title=title[:31])
    layout = sheet_columns(columns, overview) + ([] if overview else ENTRY)
    values = _values(rows, layout, overview)
    widths = _fitted_widths(values, layout)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    sheet.append([COLUMNS[c].header for c in layout])
    for cell, width in zip(sheet[1], widths):
        cell.font = Font(bold=True, size=BASE_PT)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = border
        sheet.column_dimensions[cell.column_letter].width = width
    sheet.row_dimensions[1].height = LINE_HEIGHT * max(_lines(COLUMNS[c].header, w) for c, w in zip(layout, widths)) + 5

    picks = rows["pick"].tolist() if "pick" in rows else [None] * len(rows)
    for r, (record, pick) in enumerate(zip(values.to_dict("records"), picks), start=2):
        lines = 1
        for c, column in enumerate(layout, start=1):
            spec, value = COLUMNS[column], record[column]
            cell = sheet.cell(row=r, column=c, value=value)
            cell.number_format = spec.number_format
            cell.font = Font(size=BASE_PT)
            cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal=spec.align)
            cell.border = border
            if column in ENTRY:
                cell.fill = PatternFill("solid", fgColor=ENTRY_FILL)
            elif pick == EXPLORATION_JA:
                cell.fill = PatternFill("solid", fgColor=EXPLORATION_FILL)
            lines = max(lines, _lines(_cell_text(value, column), widths[c - 1]))
        sheet.row_dimensions[r].height = LINE_HEIGHT * max(lines, 2 if not overview else 1) + 3   # room to write

    last = max(len(rows) + 1, 2)
    letter = {c: get_column_letter(i) for i, c in enumerate(layout, start=1)}
    if not overview:
        choice = DataValidation(type="list", formula1='"' + ",".join(OUTCOME_CHOICES) + '"', allow_blank=True,
                                showDropDown=False, showErrorMessage=True, errorTitle=OUTCOME_HEADER,
                                error="一覧から選んでください: " + "・".join(OUTCOME_CHOICES),
                                showInputMessage=True, promptTitle=OUTCOME_HEADER,
                                prompt="一覧から選択: " + "・".join(OUTCOME_CHOICES))
        sheet.add_data_validation(choice)
        choice.add(f"{letter['outcome']}2:{letter['outcome']}{last}")
        when = DataValidation(showInputMessage=True, promptTitle=VISIT_DATE_HEADER,
                              prompt="例: 2026/11/05 または 令和8年11月5日", allow_blank=True)
        sheet.add_data_validation(when)
        when.add(f"{letter['visit_date']}2:{letter['visit_date']}{last}")
        sheet[f"{letter['outcome']}1"].comment = Comment(
            "訪問後に記入してください。要支援＝支援が必要、問題なし＝心配なし、不在＝会えなかった、拒否＝訪問を断られた、"
            "入院中・転居・施設入所・死亡＝訪問して分かったこと、その他＝特記事項に内容を。"
            "訪問日を書いた行は訪問結果も選んでください（空欄のままでは取り込めません）。", "mimamori")
        sheet[f"{letter['note']}1"].comment = Comment(
            "気づいたこと、次回への申し送りなど（自由記入）。「その他」を選んだときはその内容を。", "mimamori")
        sheet[f"{letter['visitor']}1"].comment = Comment("訪問する方のお名前（コーディネーターが記入）。", "mimamori")
    if "band" in layout:
        sheet[f"{letter['band']}1"].comment = Comment(
            "今月の掲載可能な方の中での位置です（例：上位0.5%＝高い方から200人に1人）。確率ではありません。", "mimamori")
    if "pick" in layout:
        sheet[f"{letter['pick']}1"].comment = Comment(
            "探索＝リストの確かさを確かめるため、優先度によらず選ばれた方です。訪問の仕方は他の方と同じです。", "mimamori")
    if "previous_visit" in layout:
        sheet[f"{letter['previous_visit']}1"].comment = Comment("これまでに記録された最後の訪問の日付と結果。", "mimamori")

    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(layout))}{last}"
    sheet.print_title_rows = "1:1"
    sheet.print_options.horizontalCentered = True
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins.left = sheet.page_margins.right = SIDE_MARGIN_INCHES
    sheet.page_margins.top = sheet.page_margins.bottom = 0.6
    sheet.page_margins.header = sheet.page_margins.footer = 0.3
    sheet.oddHeader.center.text = f"見守り訪問リスト {month}（{title}）　取扱注意・個人情報"
    sheet.oddFooter.center.text = "&P / &N ページ"
    sheet.oddFooter.right.text = "訪問するかどうかは担当者が判断します"


def outreach_workbook(frame: pd.DataFrame, month: str, columns: Sequence[str] | str = "coordinator"):
    """The visiting workbook for one recipient (an openpyxl Workbook, in memory).

    frame: the released rows (rank, district, resident_id, name, address, age, sex, band, reasons,
    previous_visit, …; optional `exploration` bool and `reason_features` list columns).
    columns: a recipient in RECIPIENTS or an explicit list of column keys (see COLUMNS), which
    gets figures in its reasons and the 全体 sheet like the coordinator.
    """
    if isinstance(columns, str):
        recipient = RECIPIENTS[columns]
    else:
        sheet_columns(list(columns), overview=True)   # refuses a column with no layout
        recipient = Recipient(tuple(columns), exact_figures=True, overview=True)
    rows = recipient_rows(frame, recipient)
    data = list(rows.columns)
    book = Workbook()
    book.remove(book.active)
    if recipient.overview:
        _write_sheet(book, OVERVIEW, rows, data, month, overview=True)
    for district, group in rows.groupby("district", sort=True):
        _write_sheet(book, str(district), group, data, month, overview=False)
    book.properties.title = f"見守り訪問リスト {month}"
    book.properties.creator = "mimamori"
    return book


def workbook_bytes(book) -> bytes:
    """The workbook as an .xlsx file's bytes."""
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ outreach.csv

CSV_FORMS = ("excel", "plain")
TEXT_FORCED = ("resident_id", "phone")   # digit strings whose leading zeros Excel would drop


def outreach_csv(frame: pd.DataFrame, recipient: str, form: str = "excel") -> pd.DataFrame:
    """The recipient's rows as outreach.csv holds them, in ward rank order.

    "excel" (the default, for opening in Excel): the sheets' Japanese headers; 宛名番号 and
    電話番号 written as ="0012345678", which Excel shows as text with its zeros; a text cell
    starting with = + - @ gets a leading ' so Excel does not run it as a formula.
    "plain" (for loading into another system): the column keys as headers and values as they are.
    """
    if form not in CSV_FORMS:
        raise ValueError(f"unknown CSV form {form!r}: choose one of {', '.join(CSV_FORMS)}")
    rows = recipient_rows(frame, recipient)
    if form == "plain":
        return rows
    out = pd.DataFrame(index=rows.index)
    for column in rows.columns:
        texts = [_cell_text(v, column) for v in rows[column]]
        if column in TEXT_FORCED:
            texts = [f'="{t}"' if t else "" for t in texts]
        elif rows[column].dtype == "object" or str(rows[column].dtype) == "str":
            texts = ["'" + t if t[:1] in ("=", "+", "-", "@") else t for t in texts]
        out[COLUMNS[column].header] = texts
    return out
