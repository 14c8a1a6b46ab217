"""A returned, filled-in sheet becomes next month's outreach_outcomes delivery, and then labels."""
from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace

import pandas as pd
import pytest
from openpyxl import load_workbook

from models.labels import LabelPolicy, labels
from pipelines.catalog.lake import outcomes_known_at
from pipelines.config import load_config
from contract.months import shift
from pipelines.outcomes import OutcomesRejected, import_outcomes
from pipelines.pseudonymise import load_key
from pipelines.release import reidentify
from contract.storage import read_parquet
from pipelines.release import write_outreach_xlsx


@pytest.fixture(scope="module")
def copy(ward, tmp_path_factory):
    """A private copy of the test ward (inbox, key, lake, this month's list) to deliver into."""
    root = tmp_path_factory.mktemp("outcomes")
    for part in ("inbox", "custody/key"):
        shutil.copytree(ward.cfg.inbox if part == "inbox" else ward.cfg.key_file.parent, root / part)
    shutil.copytree(ward.cfg.lake, root / "work" / "lake")
    (root / "work" / "runs" / ward.month).mkdir(parents=True)
    shutil.copy(ward.cfg.runs / ward.month / "list.parquet", root / "work" / "runs" / ward.month / "list.parquet")
    cfg = load_config(root / "mimamori.toml" if (root / "mimamori.toml").exists() else None,
                      root / "inbox", root / "work", root / "custody", environ={})
    cfg = replace(cfg, settings=ward.cfg.settings)
    return cfg, ward.month


def _sheet(cfg, month, tmp_path, columns="coordinator"):
    listed = read_parquet(cfg.runs / month / "list.parquet")
    frame = reidentify(cfg, month, listed, load_key(cfg.key_file)).sort_values("rank")
    from features.groups import age_band

    frame["age_band"] = age_band(frame["age"])
    return write_outreach_xlsx(frame, tmp_path / "returned.xlsx", month, columns), listed


def _fill(path, entries: dict[str, list[tuple]]):
    """entries: sheet -> [(row, 訪問日, 訪問結果[, 特記事項])] written as a visitor would."""
    book = load_workbook(path)
    for name, rows in entries.items():
        sheet = book[name]
        headers = [c.value for c in sheet[1]]
        for row, when, outcome, *note in rows:
            sheet.cell(row=row, column=headers.index("訪問日") + 1, value=when)
            sheet.cell(row=row, column=headers.index("訪問結果") + 1, value=outcome)
            if note:
                sheet.cell(row=row, column=headers.index("特記事項") + 1, value=note[0])
    book.save(path)


def _ward_rank(book, name: str, row: int) -> int:
    headers = [c.value for c in book[name][1]]
    return book[name].cell(row=row, column=headers.index("区全体順位") + 1).value


def test_a_returned_sheet_becomes_next_months_outcomes_and_then_labels(copy, tmp_path):
    cfg, month = copy
    nxt = shift(month, 1)
    path, listed = _sheet(cfg, month, tmp_path)
    districts = load_workbook(path).sheetnames[1:]
    _fill(path, {districts[0]: [(2, dt.datetime(2026, 11, 5), "要支援"), (3, "令和8年11月12日", "問題なし")],
                 districts[1]: [(2, "2026/11/20", "不在")]})
    written = import_outcomes(cfg, path, month)
    assert written == cfg.inbox / nxt / "outreach_outcomes.csv"
    got = pd.read_csv(written, dtype=str)
    assert list(got.columns) == ["resident_id", "visit_date", "outcome", "note"]
    assert sorted(got["outcome"]) == ["needs_support", "no_concern", "not_home"]
    assert sorted(got["visit_date"]) == ["2026-11-05", "2026-11-12", "2026-11-20"]

    # Build the rest of next month's delivery from this month's (same residents, events redelivered)
    for source in ("residents", "checkups", "care_premiums"):
        shutil.copy(cfg.inbox / month / f"{source}.csv", cfg.inbox / nxt / f"{source}.csv")
    from pipelines.ingest import ingest_month

    ingest_month(cfg, nxt, load_key(cfg.key_file))
    labelled = labels(outcomes_known_at(cfg.lake, nxt), month, LabelPolicy(cfg.get("labels", "timespan_days")))
    sheet = load_workbook(path)
    pids = {}
    for name, row in [(districts[0], 2), (districts[0], 3)]:
        rank = _ward_rank(sheet, name, row)
        pids[(name, row)] = listed.loc[listed["rank"] == rank, "pid"].iloc[0]
    by_pid = labelled.set_index("pid")["label"]
    assert by_pid[pids[(districts[0], 2)]] == 1      # 要支援 → positive
    assert by_pid[pids[(districts[0], 3)]] == 0      # 問題なし → negative
    assert len(labelled) >= 2

    # next month's sheets show these visits as 前回訪問
    from pipelines.release import with_previous_visits

    shown = with_previous_visits(cfg, nxt, listed[["pid", "rank"]]).set_index("pid")["previous_visit"]
    assert shown[pids[(districts[0], 2)]] == "2026/11/05 要支援"
    assert shown[pids[(districts[0], 3)]] == "2026/11/12 問題なし"


def test_unknown_outcomes_and_bad_dates_are_rejected_with_sheet_and_row_and_nothing_is_written(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 2)
    path, _ = _sheet(cfg, month, tmp_path)
    district = load_workbook(path).sheetnames[1]
    _fill(path, {district: [(2, "2026/11/05", "元気"), (3, "2026/13/45", "要支援"), (4, None, "不在")]})
    with pytest.raises(OutcomesRejected) as caught:
        import_outcomes(cfg, path, month, into=into)
    message = str(caught.value)
    assert f"sheet 「{district}」 row 2: unknown 訪問結果" in message
    assert f"sheet 「{district}」 row 3: 訪問日 is not a date" in message
    assert f"sheet 「{district}」 row 4: 訪問日 is missing" in message
    # and in Japanese first, each line placed by sheet and row, with what to do
    assert f"シート「{district}」2行目: 訪問結果が一覧にない値です。" in message
    assert f"シート「{district}」3行目: 訪問日が日付として読めません。2026/11/05 か 令和8年11月5日 の形で記入してください" in message
    assert f"シート「{district}」4行目: 訪問日が空欄です。" in message
    assert "何も取り込んでいません" in message and "nothing was imported" in message
    assert not (cfg.inbox / into).exists()


def test_outcomes_merge_with_what_was_delivered_and_the_sheet_wins(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 3)
    path, listed = _sheet(cfg, month, tmp_path)
    sheet = load_workbook(path)
    district = sheet.sheetnames[1]
    resident_id = sheet[district].cell(row=2, column=[c.value for c in sheet[district][1]].index("宛名番号") + 1).value
    (cfg.inbox / into).mkdir(parents=True)
    (cfg.inbox / into / "outreach_outcomes.csv").write_text(
        "宛名番号,訪問日,訪問結果\n"
        f"{resident_id},令和9年1月10日,不在\n"
        "0099999999,2027-01-11,拒否\n", encoding="utf-8")
    _fill(path, {district: [(2, "2027/01/10", "要支援")]})
    import_outcomes(cfg, path, month, into=into)
    got = pd.read_csv(cfg.inbox / into / "outreach_outcomes.csv", dtype=str)
    assert got.fillna("").to_dict("records") == [
        {"resident_id": resident_id, "visit_date": "2027-01-10", "outcome": "needs_support", "note": ""},
        {"resident_id": "0099999999", "visit_date": "2027-01-11", "outcome": "declined", "note": ""}]


def test_a_minsei_sheet_without_ids_is_matched_by_rank(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 4)
    path, listed = _sheet(cfg, month, tmp_path, columns="minsei")
    district = load_workbook(path).sheetnames[1]
    _fill(path, {district: [(2, "2027/02/01", "問題なし")]})
    import_outcomes(cfg, path, month, into=into)
    got = pd.read_csv(cfg.inbox / into / "outreach_outcomes.csv", dtype=str)
    assert got["outcome"].tolist() == ["no_concern"] and got["resident_id"].str.len().iloc[0] >= 6


def test_a_person_not_on_the_list_and_a_visit_after_the_delivery_are_refused(copy, tmp_path):
    cfg, month = copy
    path, _ = _sheet(cfg, month, tmp_path)
    book = load_workbook(path)
    district = book.sheetnames[1]
    headers = [c.value for c in book[district][1]]
    book[district].cell(row=2, column=headers.index("宛名番号") + 1, value="0000000001")
    book.save(path)
    _fill(path, {district: [(2, "2026/11/05", "要支援")]})
    with pytest.raises(OutcomesRejected, match="row 2: the 宛名番号 is not on the"):
        import_outcomes(cfg, path, month, into=shift(month, 5))
    path, _ = _sheet(cfg, month, tmp_path)
    _fill(path, {district: [(3, "2027/12/01", "要支援")]})
    with pytest.raises(OutcomesRejected, match="after the end of"):
        import_outcomes(cfg, path, month, into=shift(month, 5))


def test_a_row_with_a_visit_date_or_a_note_but_no_outcome_is_refused_by_name(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 6)
    path, _ = _sheet(cfg, month, tmp_path)
    district = load_workbook(path).sheetnames[1]
    _fill(path, {district: [(2, "2026/11/05", "要支援"), (3, "2026/11/06", None), (4, None, None, "留守、ポストに手紙")]})
    with pytest.raises(OutcomesRejected) as caught:
        import_outcomes(cfg, path, month, into=into)
    message = str(caught.value)
    assert message.startswith("returned.xlsx: 問題 2 件。何も取り込んでいません。")
    assert "returned.xlsx: 2 problem(s); nothing was imported" in message
    assert (f"シート「{district}」3行目: 訪問日があるのに訪問結果が空欄です。訪問結果を一覧（要支援・問題なし・不在・拒否・入院中・"
            "転居・施設入所・死亡・その他）から選ぶか、訪問していなければ訪問日を消して、もう一度取り込んでください") in message
    assert (f"sheet 「{district}」 row 3: a 訪問日 (visit date) but no 訪問結果 (outcome): choose one from the list, "
            "or clear the 訪問日 (visit date) if the visit did not happen") in message
    assert f"シート「{district}」4行目: 特記事項があるのに訪問結果が空欄です" in message
    assert "row 2" not in message and "留守" not in message          # the good row is not blamed; notes are not quoted
    assert not (cfg.inbox / into).exists()                           # nothing partially imported


def test_the_new_outcomes_and_a_free_note_are_stored_and_stay_in_custody(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 7)
    path, listed = _sheet(cfg, month, tmp_path, columns="minsei")
    book = load_workbook(path)
    assert "全体" not in book.sheetnames   # a volunteer's workbook has no ward-wide sheet
    slots = [(s.title, r) for s in book.worksheets for r in range(2, s.max_row + 1)]
    new = ["入院中", "転居", "施設入所", "死亡", "その他"]
    entries: dict[str, list[tuple]] = {}
    for (name, r), outcome in zip(slots, new):
        entries.setdefault(name, []).append(
            (r, f"2027/01/0{len(entries) + r}", outcome, "長女宅へ転居予定と隣人から" if outcome == "その他" else None))
    _fill(path, entries)
    written = import_outcomes(cfg, path, month, into=into)
    got = pd.read_csv(written, dtype=str).fillna("")
    assert sorted(got["outcome"]) == sorted(["hospitalised", "moved", "institution", "deceased", "other"])
    assert got.loc[got["outcome"] == "other", "note"].tolist() == ["長女宅へ転居予定と隣人から"]
    from contract.sources import SOURCES
    from pipelines.reading import read_source
    from pipelines.ingest import pseudonymise_rows

    read = read_source(written, SOURCES["outreach_outcomes"], delivery_month=into)
    assert len(read.quarantine) == 0 and set(read.rows["outcome"]) == set(got["outcome"])
    lake_rows = pseudonymise_rows(read.rows, SOURCES["outreach_outcomes"], load_key(cfg.key_file), into)
    assert "note" not in lake_rows.columns                             # the free note never reaches the lake


def test_a_sheet_made_before_district_order_is_matched_by_its_ward_rank(copy, tmp_path):
    cfg, month = copy
    into = shift(month, 8)
    path, listed = _sheet(cfg, month, tmp_path, columns="minsei")
    book = load_workbook(path)
    sheet = book.worksheets[0]
    headers = [c.value for c in sheet[1]]
    ward_rank = sheet.cell(row=3, column=headers.index("区全体順位") + 1).value
    for row in range(2, sheet.max_row + 1):   # the old layout: 順位 was the ward rank, no 区全体順位
        sheet.cell(row=row, column=1, value=sheet.cell(row=row, column=2).value)
    sheet.delete_cols(2)
    book.save(path)
    _fill(path, {sheet.title: [(3, "2027/03/01", "問題なし")]})
    import_outcomes(cfg, path, month, into=into)
    got = pd.read_csv(cfg.inbox / into / "outreach_outcomes.csv", dtype=str)
    ids = reidentify(cfg, month, listed, load_key(cfg.key_file)).set_index("rank")["resident_id"]
    assert got["resident_id"].tolist() == [ids[ward_rank]]


def test_the_new_outcomes_label_nobody_and_the_old_ones_still_do():
    from models.labels import Outcomes

    found = ["needs_support", "no_concern", "hospitalised", "moved", "institution", "deceased", "other", "not_home"]
    visits = pd.DataFrame({"pid": [f"p{i}" for i in range(len(found))],
                           "visit_date": pd.to_datetime(["2026-11-05"] * len(found)), "outcome": found})
    adverse = pd.DataFrame({"pid": pd.Series(dtype="str"), "event_date": pd.Series(dtype="datetime64[ns]"),
                            "event_type": pd.Series(dtype="str")})
    got = labels(Outcomes(visits, adverse), "2026-10", LabelPolicy(90))
    assert got.to_dict("records") == [{"pid": "p0", "label": 1, "weight": 1.0, "visit_label": 1.0},
                                      {"pid": "p1", "label": 0, "weight": 1.0, "visit_label": 1.0}]
