"""Reading delivered files: encodings, formats, headers, the 個人番号 guard, quarantine reasons."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contract.sources import SOURCES, Column, Source
from pipelines.reading import ContractError, SourceRead, delivery_file, read_source

RESIDENTS = SOURCES["residents"]
CHECKUPS = SOURCES["checkups"]
CARE = SOURCES["care_premiums"]
MY_NUMBER = "621498320257"  # valid check digit (python-stdnum's documented example)

CANONICAL_RESIDENTS = """\
resident_id,household_id,name,name_kana,birth_date,sex,address,district,relationship,moved_in_date,phone
0000001,0000101,山田 花子,ヤマダ ハナコ,1940-03-05,female,東京都千代田区千代田1-1,001,世帯主,1989-01-07,03-1234-5678
0000002,0000102,佐藤 一郎,サトウ イチロウ,1952-11-30,male,東京都千代田区神田2-3,002,世帯主,2019-05-01,
0000003,0000102,佐藤 和子,,1955-01-01,other,東京都千代田区神田2-3,002,妻,,
"""
JAPANESE_RESIDENTS = """\
宛名番号,世帯番号,氏名,カナ氏名,生年月日,性別,住所,地区コード,続柄,住定日,電話番号
０００００01,0000101,山田　花子,ﾔﾏﾀﾞ ﾊﾅｺ,昭和15年3月5日,女,東京都千代田区千代田1-1,001,世帯主,S64.1.7,03-1234-5678
0000002,0000102,佐藤 一郎,サトウ イチロウ,S27.11.30,1,東京都千代田区神田２－３,002,世帯主,令和元年5月1日,
0000003,0000102,佐藤 和子, ,昭和30年1月1日,9,東京都千代田区神田2-3,002,妻,,
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read(tmp_path: Path, text: str, source: Source = CHECKUPS, month: str | None = "2024-10", name: str | None = None,
         encoding: str = "utf-8") -> SourceRead:
    path = write(tmp_path / (name or f"{source.name}.csv"), text, encoding)
    return read_source(path, source, delivery_month=month)


def as_list(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


def reasons(result: SourceRead) -> dict[int, str]:
    return dict(zip(result.quarantine["_line"], result.quarantine["reason"]))


# ------------------------------------------------------------------------ encodings, formats


def test_cp932_japanese_file_reads_like_its_canonical_utf8_twin(tmp_path: Path) -> None:
    canonical = read(tmp_path, CANONICAL_RESIDENTS, RESIDENTS, name="a.csv")
    japanese = read(tmp_path, JAPANESE_RESIDENTS, RESIDENTS, name="b.csv", encoding="cp932")
    assert (canonical.encoding, japanese.encoding) == ("utf-8", "cp932")
    assert len(canonical.rows) == 3 and canonical.quarantine.empty and japanese.quarantine.empty
    pd.testing.assert_frame_equal(japanese.rows, canonical.rows)
    assert japanese.unknown_columns == canonical.unknown_columns == []


def test_typed_columns(tmp_path: Path) -> None:
    rows = read(tmp_path, CANONICAL_RESIDENTS, RESIDENTS).rows
    assert list(rows.columns) == [c.name for c in RESIDENTS.columns] + ["_line"]
    assert rows["resident_id"].dtype == "str" and rows["resident_id"].tolist()[0] == "0000001"
    assert rows["birth_date"].dtype == "datetime64[us]"
    assert rows["moved_in_date"].tolist()[:2] == [pd.Timestamp("1989-01-07"), pd.Timestamp("2019-05-01")]
    assert rows["sex"].tolist() == ["female", "male", "other"]
    assert rows["_line"].tolist() == [2, 3, 4] and rows["_line"].dtype == "int64"
    assert as_list(rows["phone"]) == ["03-1234-5678", None, None]
    assert isinstance(rows.index, pd.RangeIndex)


def test_utf8_with_bom(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date\n001,2024-10-01\n", encoding="utf-8-sig")
    assert result.encoding == "utf-8-sig"
    assert result.rows["resident_id"].tolist() == ["001"]


def test_gzip(tmp_path: Path) -> None:
    path = tmp_path / "checkups.csv.gz"
    path.write_bytes(gzip.compress("宛名番号,受診日,健診種別\n0042,R6.10.3,特定健診\n".encode("cp932")))
    result = read_source(path, CHECKUPS, delivery_month="2024-10")
    assert result.encoding == "cp932"
    assert result.rows[["resident_id", "exam_date", "program"]].values.tolist() == [
        ["0042", pd.Timestamp("2024-10-03"), "特定健診"]
    ]


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkups.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ContractError, match="gzip"):
        read_source(path, CHECKUPS)


def test_parquet_with_typed_columns_reads_like_csv(tmp_path: Path) -> None:
    table = pa.table({
        "resident_id": ["0001", "0002", "0003"],
        "billing_month": pa.array([pd.Timestamp("2024-09-01").date(), pd.Timestamp("2024-10-01").date(), None],
                                  pa.date32()),
        "amount_due": [1200.0, np.nan, 5000.0],  # how pandas stores an integer column with a gap
        "amount_paid": pa.array([1200, 0, 5000], pa.int32()),
        "paid_date": pa.array([pd.Timestamp("2024-10-05 00:00", tz="Asia/Tokyo"), None, None],
                              pa.timestamp("us", tz="Asia/Tokyo")),
        "collection": pa.array(["special", "普通徴収", None]).dictionary_encode(),
    })
    path = tmp_path / "care_premiums.parquet"
    pq.write_table(table, path)
    result = read_source(path, CARE, delivery_month="2024-10")
    twin = read(tmp_path, "resident_id,billing_month,amount_due,amount_paid,paid_date,collection\n"
                          "0001,2024-09,1200,1200,2024-10-05,special\n"
                          "0002,2024-10,,0,,普通徴収\n"
                          "0003,,5000,5000,,\n", CARE)
    assert result.encoding == "parquet"
    pd.testing.assert_frame_equal(result.rows, twin.rows)
    # Quarantine keeps raw cells: an empty CSV cell is "", a Parquet null is NA.
    pd.testing.assert_frame_equal(result.quarantine.fillna(""), twin.quarantine.fillna(""))
    assert result.rows["_line"].tolist() == [2]  # parquet rows count like CSV lines: first row = 2
    assert reasons(result) == {3: "amount_due: missing", 4: "billing_month: missing"}


def test_unreadable_parquet_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "checkups.parquet", "resident_id,exam_date\n")
    with pytest.raises(ContractError, match="Parquet"):
        read_source(path, CHECKUPS)


# ------------------------------------------------------------------------------ headers


def test_header_with_spaces_full_width_letters_and_case(tmp_path: Path) -> None:
    result = read(tmp_path, " ｒｅｓｉｄｅｎｔ＿ｉｄ ,EXAM_Date ,　健診種別　\n7,2024-10-01,がん検診\n")
    assert result.rows[["resident_id", "program"]].values.tolist() == [["7", "がん検診"]]
    assert result.unknown_columns == []


def test_missing_required_column_is_refused_and_named(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"checkups\.csv.*exam_date") as error:
        read(tmp_path, "resident_id,program\n1,特定健診\n")
    assert "resident_id" not in str(error.value).split("missing")[1]


def test_headerless_file_is_refused_without_echoing_its_values(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="header row missing") as error:
        read(tmp_path, "0000001,山田 花子,1940-03-05\n0000002,佐藤 一郎,1952-11-30\n", RESIDENTS)
    assert "山田" not in str(error.value) and "0000001" not in str(error.value)


def test_column_named_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="resident_id appears twice"):
        read(tmp_path, "resident_id,exam_date,宛名番号\n1,2024-10-01,1\n")


def test_unknown_columns_are_dropped_and_reported(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date,memo,会場,\n1,2024-10-01,x,区民会館,\n")
    assert result.unknown_columns == ["memo", "会場", "(unnamed column 5)"]
    assert list(result.rows.columns) == ["resident_id", "exam_date", "program", "_line"]


def test_absent_optional_columns_are_all_na_and_typed(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,billing_month,amount_due,amount_paid\n1,2024-10,100,100\n", CARE)
    rows = result.rows
    assert rows["paid_date"].dtype == "datetime64[us]" and rows["paid_date"].isna().all()
    assert rows["collection"].dtype == "str" and rows["collection"].isna().all()
    assert result.quarantine.empty


def test_header_only_file_gives_empty_typed_tables(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,billing_month,amount_due,amount_paid\n", CARE)
    assert len(result.rows) == 0 and len(result.quarantine) == 0
    assert result.rows["amount_due"].dtype == "Int64"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="empty"):
        read(tmp_path, "")


# ------------------------------------------------------------------------------ encodings


def test_undecodable_bytes_are_refused_with_file_and_line(tmp_path: Path) -> None:
    good = "宛名番号,受診日\n1,令和6年10月1日\n2,令和6年10月2日\n".encode("cp932")
    path = tmp_path / "checkups.csv"
    path.write_bytes(good + b"3,\x82\x20\n4,2024-10-04\n")  # a CP932 lead byte without its trail byte
    with pytest.raises(ContractError, match=r"checkups\.csv line 4: bytes that are neither UTF-8 nor CP932"):
        read_source(path, CHECKUPS)


def test_undecodable_bytes_in_a_utf8_file(tmp_path: Path) -> None:
    good = "宛名番号,受診日\n1,令和6年10月1日\n2,令和6年10月2日\n3,令和6年10月3日\n".encode("utf-8")
    path = tmp_path / "checkups.csv"
    path.write_bytes(good + b"4,\x80\x80\n")
    with pytest.raises(ContractError, match=r"checkups\.csv line 5: "):
        read_source(path, CHECKUPS)


def test_a_damaged_utf8_file_is_not_read_as_cp932(tmp_path: Path) -> None:
    good = "宛名番号,受診日\n1,令和6年10月1日\n".encode("utf-8")
    path = tmp_path / "checkups.csv"
    path.write_bytes(good + b"2,\xb1\n")  # 0xB1 alone is valid CP932 (a half-width kana)
    with pytest.raises(ContractError, match=r"checkups\.csv line 3: "):
        read_source(path, CHECKUPS)


def test_a_bom_file_with_bad_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkups.csv"
    path.write_bytes(b"\xef\xbb\xbfresident_id,exam_date\n1," + "令和".encode("cp932") + b"\n")
    with pytest.raises(ContractError, match=r"checkups\.csv line 2: "):
        read_source(path, CHECKUPS)


# ------------------------------------------------------------------------- 個人番号 guard


@pytest.mark.parametrize("header", ["個人番号", "マイナンバー", "my_number", "MyNumber", "my number", "ＭＹ＿ＮＵＭＢＥＲ",
                                    "個人番号カード番号", "kojin_bango", "本人の個人番号"])
def test_a_header_naming_the_individual_number_is_refused(tmp_path: Path, header: str) -> None:
    with pytest.raises(ContractError, match="個人番号") as error:
        read(tmp_path, f"resident_id,exam_date,{header}\n1,2024-10-01,\n")
    assert "line 1" in str(error.value) and "checkups.csv" in str(error.value)


@pytest.mark.parametrize("cell", [MY_NUMBER, "6214 9832 0257", "６２１４－９８３２－０２５７", "6214-9832-0257"])
def test_a_my_number_hidden_in_an_innocent_column_is_refused_without_the_value(tmp_path: Path, cell: str) -> None:
    text = f"resident_id,exam_date,memo\n1,2024-10-01,特になし\n2,2024-10-02,{cell}\n"
    with pytest.raises(ContractError) as error:
        read(tmp_path, text)
    message = str(error.value)
    assert "checkups.csv line 3" in message and "memo" in message and "個人番号" in message
    for shown in (message, repr(error.value)):
        assert cell not in shown and MY_NUMBER not in shown and "9832" not in shown


def test_a_my_number_in_a_contract_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"line 2, column 3 \('program'\)"):
        read(tmp_path, f"resident_id,exam_date,program\n1,2024-10-01,{MY_NUMBER}\n")


def test_a_my_number_as_an_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="line 3, column 1"):
        read(tmp_path, f"resident_id,exam_date\n1,2024-10-01\n{MY_NUMBER},2024-10-02\n")


def test_a_my_number_in_the_header_row_is_refused_without_the_value(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as error:
        read(tmp_path, f"resident_id,exam_date,{MY_NUMBER}\n1,2024-10-01,x\n")
    assert MY_NUMBER not in str(error.value) and "line 1, column 3" in str(error.value)


def test_a_my_number_in_a_malformed_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="line 3"):
        read(tmp_path, f"resident_id,exam_date\n1,2024-10-01\n2,2024-10-02,{MY_NUMBER}\n")


def test_a_my_number_in_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkups.parquet"
    pq.write_table(pa.table({"resident_id": ["1", "2"], "exam_date": ["2024-10-01"] * 2,
                             "note": pa.array([1.0, float(MY_NUMBER)])}), path)
    with pytest.raises(ContractError, match="line 3, column 3") as error:
        read_source(path, CHECKUPS)
    assert MY_NUMBER not in str(error.value)


def test_twelve_digits_with_a_wrong_check_digit_pass(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date,memo\n1,2024-10-01,621498320258\n")
    assert len(result.rows) == 1 and result.unknown_columns == ["memo"]


# --------------------------------------------------------------------------- quarantine


def test_each_row_problem_is_quarantined_with_reason_and_line(tmp_path: Path) -> None:
    text = (
        "resident_id,billing_month,amount_due,amount_paid,paid_date,collection\n"
        "1,2024-10,1200,1200,2024-10-05,特別徴収\n"  # 2: good
        ",2024-10,1200,1200,,\n"  # 3
        "12a,2024-10,1200,1200,,\n"  # 4
        "4,2024-13,1200,1200,,\n"  # 5
        "5,2024-10,-100,0,,\n"  # 6
        "6,2024-10,1200,1.5,,\n"  # 7
        "7,2024-10,1200,1200,2024-10-32,\n"  # 8
        "8,2024-10,1200,1200,,年金\n"  # 9
        "9,2024-11,1200,1200,2024-11-01,\n"  # 10
        "10,2024-09,１，２００,0,,普通徴収\n"  # 11: good
        "11,,,,,\n"  # 12
    )
    result = read(tmp_path, text, CARE, month="2024-10")
    assert result.rows["_line"].tolist() == [2, 11]
    assert result.rows["amount_due"].tolist() == [1200, 1200]
    assert result.rows["collection"].tolist() == ["special", "ordinary"]
    assert reasons(result) == {
        3: "resident_id: missing",
        4: "resident_id: not digits",
        5: "billing_month: not a month",
        6: "amount_due: negative",
        7: "amount_paid: not an integer",
        8: "paid_date: not a date",
        9: "collection: unknown value",
        10: "billing_month: after delivery month end; paid_date: after delivery month end",
        12: "billing_month: missing; amount_due: missing; amount_paid: missing",
    }


def test_quarantine_keeps_the_raw_strings(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date,program\n００7,R6.10.32, 特定健診 \n", month="2024-10")
    row = result.quarantine.iloc[0]
    assert (row["resident_id"], row["exam_date"], row["program"]) == ("００7", "R6.10.32", " 特定健診 ")
    assert list(result.quarantine.columns) == ["resident_id", "exam_date", "program", "_line", "reason"]
    assert result.quarantine["resident_id"].dtype == "str"


def test_residents_problems(tmp_path: Path) -> None:
    text = CANONICAL_RESIDENTS + (
        "0000004,0000104,鈴木 清,,2031-01-01,male,東京都千代田区1,001,世帯主,,\n"  # 5: born in the future
        "0000005,0000105,高橋 幸子,,1950-01-01,女性,東京都千代田区2,,世帯主,,\n"  # 6: no district
        "0000006,0000106,田中 弘,,1950-01-01,3,東京都千代田区3,001,世帯主,,\n"  # 7: sex 3
    )
    result = read(tmp_path, text, RESIDENTS, month=None)
    assert result.rows["_line"].tolist() == [2, 3, 4]
    assert reasons(result) == {5: "birth_date: in the future", 6: "district: missing", 7: "sex: unknown value"}


def test_observation_after_the_delivery_month(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date\n1,2024-10-31\n2,2024-11-01\n3,令和6年11月1日\n", month="2024-10")
    assert result.rows["_line"].tolist() == [2]
    assert set(reasons(result).values()) == {"exam_date: after delivery month end"}


def test_validity_periods_may_end_after_the_delivery_month(tmp_path: Path) -> None:
    text = "宛名番号,要介護度,有効開始日,有効終了日\n1,要介護３,2024-04-01,2025-03-31\n2,要支援1,2024-11-01,2026-10-31\n"
    result = read(tmp_path, text, SOURCES["care_certifications"], month="2024-10")
    assert result.quarantine.empty
    assert result.rows["care_level"].tolist() == ["care_3", "support_1"]


def test_duplicate_keys_quarantine_every_row_sharing_the_key(tmp_path: Path) -> None:
    text = (
        "resident_id,billing_month,amount_due,amount_paid\n"
        "1,2024-10,100,100\n"
        "1,R6.10,100,0\n"  # the same key written differently
        "1,2024-09,100,100\n"
        "2,2024-10,100,100\n"
        "2,2024-10,-1,100\n"  # a duplicate that is also bad
    )
    result = read(tmp_path, text, CARE)
    assert result.rows["_line"].tolist() == [4]
    assert reasons(result) == {
        2: "duplicate key (resident_id, billing_month)",
        3: "duplicate key (resident_id, billing_month)",
        5: "duplicate key (resident_id, billing_month)",
        6: "amount_due: negative; duplicate key (resident_id, billing_month)",
    }


def test_irregular_csv_keeps_physical_line_numbers(tmp_path: Path) -> None:
    text = (
        "resident_id,exam_date,program\r\n"
        "1,2024-10-01,\"特定\r\n健診\"\r\n"  # lines 2-3: a line break inside a quoted cell
        "\r\n"  # 4: blank
        "2,2024-10-xx,x\r\n"  # 5: bad date
        "3,2024-10-03\r\n"  # 6: a field short
        "4,2024-10-04,a,b\r\n"  # 7: a field too many
        "5,\"2024-10-05\",\"がん, 検診\"\r\n"  # 8: good
    )
    result = read(tmp_path, text)
    assert result.rows["_line"].tolist() == [2, 8]
    assert result.rows["program"].tolist() == ["特定\r\n健診", "がん, 検診"]
    assert reasons(result) == {5: "exam_date: not a date", 6: "malformed row: 2 fields, expected 3",
                               7: "malformed row: 4 fields, expected 3"}
    assert result.quarantine.loc[result.quarantine["_line"] == 6, "resident_id"].isna().all()


def test_trailing_blank_lines_do_not_shift_lines(tmp_path: Path) -> None:
    result = read(tmp_path, "resident_id,exam_date\n1,2024-10-01\n2,x\n\n\n")
    assert result.rows["_line"].tolist() == [2] and reasons(result) == {3: "exam_date: not a date"}


def test_bool_columns(tmp_path: Path) -> None:
    source = Source("flags", "テスト", "snapshot", False,
                    (Column("resident_id", "id", required=True), Column("alone", "bool", aliases=("独居",))),
                    key=("resident_id",), date_column=None)
    result = read(tmp_path, "resident_id,独居\n1,有\n2,無\n3,はい\n4,N\n5,\n6,たぶん\n", source, name="flags.csv")
    assert result.rows["alone"].dtype == "boolean"
    assert as_list(result.rows["alone"]) == [True, False, True, False, None]
    assert reasons(result) == {7: "alone: not a boolean"}


def test_bad_delivery_month_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read(tmp_path, "resident_id,exam_date\n1,2024-10-01\n", month="2024-13")


# ---------------------------------------------------------------------------- delivery_file


def test_delivery_file(tmp_path: Path) -> None:
    assert delivery_file(tmp_path, "checkups") is None
    for suffix in (".csv", ".csv.gz", ".parquet"):
        path = tmp_path / f"checkups{suffix}"
        path.write_bytes(b"")
        assert delivery_file(tmp_path, "checkups") == path
        path.unlink()


def test_two_files_for_one_source_are_refused(tmp_path: Path) -> None:
    (tmp_path / "checkups.csv").write_bytes(b"")
    (tmp_path / "checkups.parquet").write_bytes(b"")
    with pytest.raises(ContractError, match="more than once"):
        delivery_file(tmp_path, "checkups")
