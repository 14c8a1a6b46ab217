"""Visiting sheets: per district in district order, only what each recipient needs, printable
on A4 at 10 pt or more, entry columns to fill in; outreach.csv that Excel opens intact."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from openpyxl import load_workbook

from contract.sources import OUTCOME
from features.catalog import describe, questions
from features.groups import age_band
from pipelines.release import _write_csv, write_outreach_xlsx
from reports.recipients import RECIPIENTS, previous_visits, recipient_rows
from reports.sheet_checks import layout_problems, preview_html, printed_font_pt
from reports.sheets import OUTCOME_CHOICES, OVERVIEW, display_width, outreach_csv, outreach_workbook

DISTRICTS = ["東町地区", "西原地区", "緑が丘地区"]


def released(n: int = 23, ages=None, reasons=None) -> pd.DataFrame:
    """A released frame as pipelines/release.py makes it (synthetic people, not residents)."""
    ages = ages or [95 - i % 25 for i in range(n)]
    default = [(f"{describe('age', ages[i])[0]}、ひとり暮らし、介護保険料を4か月分滞納",
                ["age", "living_alone", "care_arrears_months"]) if i % 2 == 0 else
               ("健診の受診記録が2年以上なし、相談・見守りの記録が14か月以上なし",
                ["months_since_checkup", "months_since_contact"]) for i in range(n)]
    reasons = reasons or default
    return pd.DataFrame({
        "pid": [f"{i:032x}" for i in range(n)],
        "rank": range(1, n + 1),
        "district": [DISTRICTS[i % 3] for i in range(n)],
        "resident_id": [f"00{1000000 + i:08d}" for i in range(n)],
        "name": [f"見守　花子{i}" for i in range(n)],
        "name_kana": [f"ミマモリ　ハナコ{i}" for i in range(n)],
        "address": [f"東京都みまもり区東町2丁目{i}番13号　レジデンス東町{100 + i}" for i in range(n)],
        "phone": [f"080-0000-{i:04d}" for i in range(n)],
        "age": ages,
        "age_band": age_band(pd.Series(ages)).tolist(),
        "sex": ["女" if i % 2 else "男" for i in range(n)],
        "score": [0.9 - i / 100 for i in range(n)],
        "band": [f"上位{0.1 * (i + 1):.1f}%" for i in range(n)],
        "reasons": [r[0] for r in reasons],
        "reasons_en": ["aged 90 or over; lives alone; 4 months of care-premium arrears"] * n,
        "reason_features": [r[1] for r in reasons],
        "source": ["model"] * n,
        "exploration": [i % 7 == 6 for i in range(n)],
        "previous_visit": ["2026/09/12 不在" if i % 4 == 0 else None for i in range(n)],
    }).sample(frac=1, random_state=1)   # any order in: rank order out


def cells(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def column(sheet, header: str) -> list:
    rows = cells(sheet)
    return [r[rows[0].index(header)] for r in rows[1:]]


@pytest.fixture(scope="module")
def book_path(tmp_path_factory):
    return write_outreach_xlsx(released(), tmp_path_factory.mktemp("sheets") / "outreach.xlsx", "2026-10")


# --- finding 5: order within the district, the ward rank beside it ------------------------------

@pytest.mark.parametrize("recipient", sorted(RECIPIENTS))
def test_each_district_sheet_numbers_its_people_from_one_with_the_ward_rank_beside(recipient):
    frame = released()
    book = outreach_workbook(frame, "2026-10", recipient)
    districts = [n for n in book.sheetnames if n != OVERVIEW]
    assert districts == sorted(DISTRICTS)
    for name in districts:
        sheet = book[name]
        ward = sorted(frame.loc[frame["district"] == name, "rank"])
        assert column(sheet, "順位") == list(range(1, len(ward) + 1))
        assert column(sheet, "区全体順位") == ward
        assert cells(sheet)[0][:2] == ["順位", "区全体順位"] and "地区" not in cells(sheet)[0]
    assert (OVERVIEW in book.sheetnames) == (recipient == "coordinator")   # volunteers get their districts only
    if recipient == "coordinator":
        assert column(book[OVERVIEW], "順位") == list(range(1, len(frame) + 1))


def test_the_japanese_sheets_carry_no_english_reasons_and_no_provenance(book_path):
    book = load_workbook(book_path)
    for sheet in book.worksheets:
        headers = cells(sheet)[0]
        assert "reasons (English)" not in headers and "作成方法" not in headers
        text = "\n".join(str(v) for row in cells(sheet)[1:] for v in row if isinstance(v, str))
        assert "model" not in text and "aged" not in text and "baseline" not in text


# --- finding 6: only what the recipient needs ----------------------------------------------------

reason_phrases = st.one_of(
    st.integers(60, 104).map(lambda a: ("age", a)),
    st.integers(1, 12).map(lambda m: ("care_arrears_months", m)),
    st.integers(1, 12).map(lambda m: ("nhi_arrears_months", m)),
    st.sampled_from([("living_alone", 1), ("care_level", 3), ("months_since_contact", 14)]))


@settings(max_examples=40, deadline=None)
@given(people=st.lists(st.tuples(st.integers(65, 104), st.lists(reason_phrases, min_size=1, max_size=3)),
                       min_size=3, max_size=9),
       exploration_first=st.booleans())
def test_a_volunteer_never_reads_an_exact_age_or_months_of_arrears(people, exploration_first):
    ages = [a for a, _ in people]
    reasons = []
    for age, phrases in people:
        texts = [describe(f, age if f == "age" else v)[0] for f, v in phrases]
        if exploration_first:
            texts = ["無作為抽出（探索枠）"] + texts
        reasons.append(("、".join(texts), [f for f, _ in phrases]))
    frame = released(len(people), ages=ages, reasons=reasons)
    book = outreach_workbook(frame, "2026-10", "minsei")
    bands = set(age_band(pd.Series(range(0, 110))))
    for sheet in book.worksheets:
        headers = cells(sheet)[0]
        assert "年齢" not in headers and "宛名番号" not in headers and "スコア" not in headers
        for row in cells(sheet)[1:]:
            record = dict(zip(headers, row))
            for phrase in record["訪問の理由"].split("、"):
                assert not re.search(r"\d+か月分", phrase), phrase
                if re.search(r"\d+歳", phrase):
                    assert phrase in bands and phrase == record["年齢区分"], phrase   # the band, never the age
    # the CSV for volunteers says the same
    table = outreach_csv(frame, "minsei")
    assert not table["訪問の理由"].str.contains(r"\d+か月分|(?<![〜\d])\d+歳(?!以上)").any()
    assert "年齢" not in table.columns and "宛名番号" not in table.columns
    # staff keep the figures
    nurse = recipient_rows(frame, "nurse").set_index("rank")
    assert (nurse["reasons"] == frame.set_index("rank").loc[nurse.index, "reasons"]).all()


def test_a_volunteers_arrears_reason_reads_naturally():
    frame = released(3, ages=[81, 86, 92])
    rows = recipient_rows(frame, "minsei").set_index("rank")
    assert rows.loc[1, "reasons"] == "75〜84歳、ひとり暮らし、介護保険料の滞納あり"
    assert rows.loc[3, "reasons"] == "90歳以上、ひとり暮らし、介護保険料の滞納あり"


# --- A4 at 10 pt or more ----------------------------------------------------------------------

def independent_print_pt(sheet) -> float:
    """The printed size from first principles: A4 landscape is 29.7 cm; the columns are
    width × 7 px at 96 px per inch (Calibri 11); fitted to one page wide, 11 pt text shrinks
    by printable width / sheet width."""
    letters = [c.column_letter for c in sheet[1]]
    sheet_cm = sum(sheet.column_dimensions[x].width for x in letters) * 7 / 96 * 2.54
    printable_cm = 29.7 - (sheet.page_margins.left + sheet.page_margins.right) * 2.54
    return 11 * min(1.0, printable_cm / sheet_cm)


long_text = st.text(alphabet="東京都みまもり区丁目番号あいうえおカキクケコ0123456789、", min_size=1, max_size=120)


@settings(max_examples=25, deadline=None)
@given(recipient=st.sampled_from(sorted(RECIPIENTS)), addresses=st.lists(long_text, min_size=3, max_size=6),
       reason=long_text)
def test_every_sheet_prints_on_a4_landscape_at_10_pt_or_more_whatever_its_content(recipient, addresses, reason):
    frame = released(len(addresses))
    frame["address"] = addresses
    frame["reasons"] = reason
    book = outreach_workbook(frame, "2026-10", recipient)
    for sheet in book.worksheets:
        assert independent_print_pt(sheet) >= 10.0, (sheet.title, independent_print_pt(sheet))
        assert abs(printed_font_pt(sheet) - independent_print_pt(sheet)) < 0.01
        assert all((c.font.sz or 11) >= 11 for row in sheet.iter_rows() for c in row)
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and str(setup.paperSize) == str(sheet.PAPERSIZE_A4)
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth == 1 and setup.fitToHeight == 0
    assert layout_problems(book) == []


def test_the_header_repeats_is_frozen_filtered_and_pages_are_numbered(book_path):
    for sheet in load_workbook(book_path).worksheets:
        assert sheet.print_title_rows in ("1:1", "$1:$1") and sheet.freeze_panes == "A2"
        last = sheet.cell(row=1, column=sheet.max_column).column_letter
        assert sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}"
        assert "&P" in sheet.oddFooter.center.text and "&N" in sheet.oddFooter.center.text
        for col, header in enumerate(cells(sheet)[0], start=1):   # every header fits its cell
            width = sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width
            assert display_width(header) <= (sheet.row_dimensions[1].height // 15) * (width - 1), header


def test_a_broken_layout_is_reported(book_path, tmp_path):
    book = load_workbook(book_path)
    sheet = book["西原地区"]
    sheet.page_setup.orientation = "portrait"
    reasons = cells(sheet)[0].index("訪問の理由") + 1
    sheet.column_dimensions[sheet.cell(row=1, column=reasons).column_letter].width = 3
    book["東町地区"].column_dimensions["C"].width = 120       # 15 columns at 56 %, as issue 14 found
    book["東町地区"].auto_filter.ref = None
    broken = tmp_path / "broken.xlsx"
    book.save(broken)
    problems = "\n".join(layout_problems(load_workbook(broken)))
    assert "西原地区: not A4 landscape" in problems and "narrower than its header" in problems
    assert "row 2 column 訪問の理由 is cut off" in problems
    assert re.search(r"東町地区: prints at \d\.\d pt, under 10 pt", problems)
    assert "東町地区: the header row is not frozen with an autofilter" in problems


# --- entry columns: visitor, notes, previous visit, the extended outcome list ----------------

def test_entry_columns_and_the_outcome_drop_down_offer_every_contract_outcome(book_path):
    sheet = load_workbook(book_path)["東町地区"]
    headers = cells(sheet)[0]
    assert headers[-5:] == ["区分", "訪問担当者", "訪問日", "訪問結果", "特記事項"] and "前回訪問" in headers
    drop = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"][0]
    assert drop.formula1.strip('"').split(",") == OUTCOME_CHOICES
    assert {"入院中", "転居", "施設入所", "死亡", "その他", "要支援", "問題なし", "不在", "拒否"} <= set(OUTCOME_CHOICES)
    assert {OUTCOME[c] for c in OUTCOME_CHOICES} == set(OUTCOME.values())   # every contract outcome
    outcome_letter = sheet.cell(row=1, column=headers.index("訪問結果") + 1).column_letter
    assert str(drop.sqref) == f"{outcome_letter}2:{outcome_letter}{sheet.max_row}"
    frame = released().set_index("rank")
    for rank, shown in zip(column(sheet, "区全体順位"), column(sheet, "前回訪問")):
        expected = frame.loc[rank, "previous_visit"]
        assert shown == (expected if isinstance(expected, str) else None)
    assert any(column(sheet, "前回訪問"))


def test_previous_visit_is_each_persons_last_recorded_visit():
    visits = pd.DataFrame({"pid": ["a", "a", "b", "c"],
                           "visit_date": pd.to_datetime(["2026-03-02", "2026-08-20", "2026-05-01", "2026-07-07"]),
                           "outcome": ["not_home", "hospitalised", "no_concern", "declined"]})
    got = previous_visits(visits.sample(frac=1, random_state=3)).set_index("pid")["previous_visit"].to_dict()
    assert got == {"a": "2026/08/20 入院中", "b": "2026/05/01 問題なし", "c": "2026/07/07 拒否"}
    assert previous_visits(visits.iloc[:0]).empty


def test_exploration_picks_are_marked_and_questions_come_from_the_catalogue(book_path):
    frame = released().set_index("rank")
    sheet = load_workbook(book_path)[OVERVIEW]
    for rank, mark, asked, row in zip(column(sheet, "順位"), column(sheet, "区分"), column(sheet, "確認したいこと"),
                                      range(2, sheet.max_row + 1)):
        assert (mark == "探索") == bool(frame.loc[rank, "exploration"])
        if mark == "探索":
            assert sheet.cell(row=row, column=1).fill.fgColor.rgb.endswith("FFF2CC")
        assert asked == questions(frame.loc[rank, "reason_features"])[0]


def test_an_explicit_column_list_is_checked(tmp_path):
    with pytest.raises(ValueError, match="no sheet layout"):
        write_outreach_xlsx(released(), tmp_path / "x.xlsx", "2026-10", ["rank", "favourite_colour"])


def test_the_preview_renders_every_cell(book_path):
    html = preview_html(load_workbook(book_path), "東町地区")
    assert "訪問結果" in html and "見守り訪問リスト 2026-10（東町地区）" in html and "<table>" in html


# --- outreach.csv ---------------------------------------------------------------------------

def test_outreach_csv_for_excel_has_japanese_headers_and_ids_that_keep_their_zeros(tmp_path):
    frame = released()
    frame.loc[frame["rank"] == 5, "name"] = "=HYPERLINK(\"http://example.invalid\")"
    path = tmp_path / "outreach.csv"
    _write_csv(outreach_csv(frame, "coordinator"), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                      # Excel reads UTF-8 only with a BOM
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["区全体順位", "地区", "宛名番号", "氏名"]
    ids = [r[rows[0].index("宛名番号")] for r in rows[1:]]
    expected = frame.sort_values("rank")["resident_id"].tolist()
    # as Excel evaluates ="0012345678": the text between the quotes, zeros and all
    assert all(re.fullmatch(r'="\d{10}"', i) for i in ids)
    assert [i[2:-1] for i in ids] == expected and all(i[2:4] == "00" for i in ids)
    assert b'"=""00' in raw                                       # the field is quoted so Excel sees a formula
    names = [r[rows[0].index("氏名")] for r in rows[1:]]
    assert names[4].startswith("'=")                              # a name is never run as a formula
    plain = outreach_csv(frame, "coordinator", "plain")
    _write_csv(plain, path)
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert list(back.columns[:3]) == ["rank", "district", "resident_id"] and back["resident_id"].tolist() == expected
    with pytest.raises(ValueError, match="unknown CSV form"):
        outreach_csv(frame, "coordinator", "tsv")


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdfinfo") is None,
                    reason="LibreOffice (soffice) and poppler (pdfinfo) are not installed")
def test_libreoffice_prints_each_district_on_a4_landscape(book_path, tmp_path):
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(book_path)], check=True, capture_output=True, timeout=180)
    info = subprocess.run(["pdfinfo", str(tmp_path / "outreach.pdf")], capture_output=True, text=True,
                          check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
    assert (round(float(size[2])), round(float(size[4]))) == (842, 595)          # A4 landscape, in points


def test_no_sheet_shows_a_probability_looking_score_and_random_picks_carry_no_reasons(tmp_path):
    from features.catalog import EXPLORATION

    frame = released()
    picked = frame["exploration"]
    frame.loc[picked, "reasons"] = EXPLORATION[0]
    frame.loc[picked, "reasons_en"] = EXPLORATION[1]
    frame["reason_features"] = [[] if p else f for p, f in zip(picked, frame["reason_features"])]
    for recipient in RECIPIENTS:
        book = load_workbook(write_outreach_xlsx(frame, tmp_path / f"{recipient}.xlsx", "2026-10", recipient))
        for sheet in book.worksheets:
            headers = [c.value for c in sheet[1]]
            assert "スコア" not in headers
            cells = [c.value for row in sheet.iter_rows(min_row=2) for c in row]
            assert not any(isinstance(v, float) and 0 < v < 1 for v in cells)   # no 0.987 anywhere
            if "優先度" in headers:
                bands = [sheet.cell(row=r, column=headers.index("優先度") + 1).value for r in range(2, sheet.max_row + 1)]
                assert all(b.startswith("上位") and b.endswith("%") for b in bands)
            why = headers.index("訪問の理由") + 1
            ask = headers.index("確認したいこと") + 1 if "確認したいこと" in headers else None
            ranks = {int(r): p for r, p in zip(frame["rank"], picked)}
            ward_rank = headers.index("区全体順位" if "区全体順位" in headers else "順位") + 1
            for r in range(2, sheet.max_row + 1):
                if ranks[sheet.cell(row=r, column=ward_rank).value]:
                    assert sheet.cell(row=r, column=why).value == EXPLORATION[0]
                    assert ask is None or sheet.cell(row=r, column=ask).value in (None, "")
        # the band is the coordinator's, on the ward-wide sheet (reports/recipients.py)
        assert (recipient == "coordinator") == any("優先度" in [c.value for c in s[1]] for s in book.worksheets)
