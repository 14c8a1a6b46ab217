"""Visiting sheets: one sheet per district in priority order, print layout set, outcomes to fill in."""
from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest
from openpyxl import load_workbook

from features.catalog import questions
from contract.sources import OUTCOME
from pipelines.release import write_outreach_xlsx
from reports.sheets import OUTCOME_CHOICES, OVERVIEW, RECIPIENTS, display_width, layout_problems, preview_html


def released(n: int = 23) -> pd.DataFrame:
    """A released frame as pipelines/release.py makes it (synthetic people, not residents)."""
    districts = ["東町地区", "西原地区", "緑が丘地区"]
    reasons = [("90歳以上、ひとり暮らし、介護保険料を4か月分滞納", ["age", "living_alone", "care_arrears_months"]),
               ("健診の受診記録が2年以上なし、相談・見守りの記録が14か月以上なし",
                ["months_since_checkup", "months_since_contact"])]
    return pd.DataFrame({
        "rank": range(1, n + 1),
        "district": [districts[i % 3] for i in range(n)],
        "resident_id": [f"00{1000000 + i:08d}" for i in range(n)],
        "name": [f"見守　花子{i}" for i in range(n)],
        "name_kana": [f"ミマモリ　ハナコ{i}" for i in range(n)],
        "address": [f"東京都みまもり区東町2丁目{i}番13号　レジデンス東町{100 + i}" for i in range(n)],
        "phone": [f"080-0000-{i:04d}" for i in range(n)],
        "age": [95 - i % 25 for i in range(n)],
        "age_band": ["85〜89歳"] * n,
        "sex": ["女" if i % 2 else "男" for i in range(n)],
        "score": [0.9 - i / 100 for i in range(n)],
        "band": [f"上位{0.1 * (i + 1):.1f}%" for i in range(n)],
        "reasons": [reasons[i % 2][0] for i in range(n)],
        "reasons_en": ["aged 90 or over; lives alone; 4 months of care-premium arrears"] * n,
        "reason_features": [reasons[i % 2][1] for i in range(n)],
        "source": ["model"] * n,
        "exploration": [i % 7 == 6 for i in range(n)],
    }).sample(frac=1, random_state=1)   # any order in: rank order out


@pytest.fixture(scope="module")
def book_path(tmp_path_factory):
    return write_outreach_xlsx(released(), tmp_path_factory.mktemp("sheets") / "outreach.xlsx", "2026-10")


def test_one_sheet_per_district_in_priority_order_with_japanese_headers(book_path):
    book = load_workbook(book_path)
    assert book.sheetnames == [OVERVIEW, "東町地区", "緑が丘地区", "西原地区"]
    frame = released()
    for name in book.sheetnames[1:]:
        sheet = book[name]
        headers = [c.value for c in sheet[1]]
        assert headers[:2] == ["順位", "地区"] and headers[-3:] == ["区分", "訪問日", "訪問結果"]
        assert "訪問の理由" in headers and "確認したいこと" in headers
        ranks = [sheet.cell(row=r, column=1).value for r in range(2, sheet.max_row + 1)]
        assert ranks == sorted(frame.loc[frame["district"] == name, "rank"])
        ids = [sheet.cell(row=r, column=headers.index("宛名番号") + 1).value for r in range(2, sheet.max_row + 1)]
        assert all(isinstance(i, str) and i.startswith("00") for i in ids)   # leading zeros kept
    overview = [c.value for c in book[OVERVIEW][1]]
    assert overview[:4] == ["順位", "地区", "宛名番号", "氏名"] and "訪問結果" not in overview
    assert book[OVERVIEW].max_row == len(frame) + 1


def test_print_layout_entry_columns_and_dropdown_are_checked(book_path):
    assert layout_problems(load_workbook(book_path)) == []
    sheet = load_workbook(book_path)["東町地区"]
    assert sheet.page_setup.orientation == "landscape" and str(sheet.page_setup.paperSize) == str(sheet.PAPERSIZE_A4)
    assert sheet.print_title_rows in ("1:1", "$1:$1") and sheet.freeze_panes == "A2"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToWidth == 1
    drop = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"][0]
    assert drop.formula1.strip('"').split(",") == OUTCOME_CHOICES
    assert {OUTCOME[c] for c in OUTCOME_CHOICES} == set(OUTCOME.values())   # every contract outcome
    headers = [c.value for c in sheet[1]]
    for col, header in enumerate(headers, start=1):
        width = sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width
        assert width >= display_width(header) + 1, header


def test_exploration_picks_are_marked_and_questions_come_from_the_catalogue(book_path):
    frame = released().set_index("rank")
    book = load_workbook(book_path)
    sheet = book[OVERVIEW]
    headers = [c.value for c in sheet[1]]
    for r in range(2, sheet.max_row + 1):
        rank = sheet.cell(row=r, column=1).value
        mark = sheet.cell(row=r, column=headers.index("区分") + 1)
        assert (mark.value == "探索") == bool(frame.loc[rank, "exploration"])
        if mark.value == "探索":
            assert mark.fill.fgColor.rgb.endswith("FFF2CC")
        asked = sheet.cell(row=r, column=headers.index("確認したいこと") + 1).value
        assert asked == questions(frame.loc[rank, "reason_features"])[0]


def test_each_recipient_gets_only_their_columns(tmp_path):
    frame = released().drop(columns=["exploration"])
    path = write_outreach_xlsx(frame, tmp_path / "minsei.xlsx", "2026-10", "minsei")
    headers = [c.value for c in load_workbook(path)["西原地区"][1]]
    assert headers == ["順位", "地区", "氏名", "住所", "年齢区分", "訪問の理由", "確認したいこと", "訪問日", "訪問結果"]
    assert layout_problems(load_workbook(path)) == []
    assert set(RECIPIENTS) == {"coordinator", "minsei", "nurse"}
    with pytest.raises(ValueError, match="no sheet layout"):
        write_outreach_xlsx(frame, tmp_path / "x.xlsx", "2026-10", ["rank", "favourite_colour"])


def test_a_broken_layout_is_reported(book_path, tmp_path):
    book = load_workbook(book_path)
    sheet = book["西原地区"]
    sheet.page_setup.orientation = "portrait"
    reasons = [c.value for c in sheet[1]].index("訪問の理由") + 1
    sheet.column_dimensions[sheet.cell(row=1, column=reasons).column_letter].width = 3
    broken = tmp_path / "broken.xlsx"
    book.save(broken)
    problems = "\n".join(layout_problems(load_workbook(broken)))
    assert "not A4 landscape" in problems and "narrower than its header" in problems
    assert "row 2 column 訪問の理由 is cut off" in problems


def test_the_preview_renders_every_cell(book_path):
    html = preview_html(load_workbook(book_path), "東町地区")
    assert "訪問結果" in html and "見守り訪問リスト 2026-10（東町地区）" in html and "<table>" in html


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdfinfo") is None,
                    reason="LibreOffice (soffice) and poppler (pdfinfo) are not installed")
def test_libreoffice_prints_each_district_on_a4_landscape_one_page_wide(book_path, tmp_path):
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(book_path)], check=True, capture_output=True, timeout=180)
    info = subprocess.run(["pdfinfo", str(tmp_path / "outreach.pdf")], capture_output=True, text=True,
                          check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
    width, height = float(size[2]), float(size[4])
    assert (round(width), round(height)) == (842, 595)          # A4 landscape, in points
    assert pages == len(load_workbook(book_path).sheetnames)    # each sheet fits one page wide (and here, long)


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
            for r in range(2, sheet.max_row + 1):
                if ranks[sheet.cell(row=r, column=1).value]:
                    assert sheet.cell(row=r, column=why).value == EXPLORATION[0]
                    assert ask is None or sheet.cell(row=r, column=ask).value in (None, "")
        assert recipient == "minsei" or "優先度" in [c.value for c in book.worksheets[0][1]]
