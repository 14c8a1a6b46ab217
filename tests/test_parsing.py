"""Value parsers: every accepted form, the era boundaries, and property tests over whole ranges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.jp import in_ as stdnum_in

from pipelines import parsing
from contract.sources import SOURCES
from pipelines.parsing import (
    first_my_number,
    is_my_number,
    normalise_text,
    parse_bools,
    parse_date,
    parse_dates,
    parse_enums,
    parse_ids,
    parse_ints,
    parse_month,
    parse_months,
)

FULL_WIDTH = str.maketrans("0123456789-/.,RHSTMr", "０１２３４５６７８９－／．，ＲＨＳＴＭｒ")

# The test's own era table (an independent oracle, not the parser's): letter, kanji, first day.
ERAS = [
    ("M", "明治", dt.date(1868, 1, 25)),
    ("T", "大正", dt.date(1912, 7, 30)),
    ("S", "昭和", dt.date(1926, 12, 25)),
    ("H", "平成", dt.date(1989, 1, 8)),
    ("R", "令和", dt.date(2019, 5, 1)),
]


def as_list(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


def era_of(day: dt.date) -> tuple[str, str, int]:
    letter, kanji, start = [e for e in ERAS if e[2] <= day][-1]
    return letter, kanji, day.year - start.year + 1


def eras_of_month(year: int, month: int) -> list[tuple[str, str, int]]:
    """Every era that has at least one day in the month (two at an era change)."""
    first = dt.date(year, month, 1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return sorted({era_of(first), era_of(last)})


# ------------------------------------------------------------------------------ dates

DATE_FORMS = [
    ("2024-10-01", dt.date(2024, 10, 1)),
    ("2024/10/01", dt.date(2024, 10, 1)),
    ("2024/10/1", dt.date(2024, 10, 1)),
    ("2024-1-5", dt.date(2024, 1, 5)),
    ("2024.10.01", dt.date(2024, 10, 1)),
    ("20241001", dt.date(2024, 10, 1)),
    ("2024年10月1日", dt.date(2024, 10, 1)),
    ("令和6年10月1日", dt.date(2024, 10, 1)),
    ("令和元年5月1日", dt.date(2019, 5, 1)),
    ("R6.10.1", dt.date(2024, 10, 1)),
    ("R06/10/01", dt.date(2024, 10, 1)),
    ("r6.10.1", dt.date(2024, 10, 1)),
    ("R6-10-1", dt.date(2024, 10, 1)),
    ("R元.5.1", dt.date(2019, 5, 1)),
    ("H31.4.30", dt.date(2019, 4, 30)),
    ("平成31年4月30日", dt.date(2019, 4, 30)),
    ("S64.1.7", dt.date(1989, 1, 7)),
    ("昭和64年1月7日", dt.date(1989, 1, 7)),
    ("平成元年1月8日", dt.date(1989, 1, 8)),
    ("H1.1.8", dt.date(1989, 1, 8)),
    ("昭和元年12月25日", dt.date(1926, 12, 25)),
    ("大正15年12月24日", dt.date(1926, 12, 24)),
    ("T1.7.30", dt.date(1912, 7, 30)),
    ("明治45年7月29日", dt.date(1912, 7, 29)),
    ("M1.1.25", dt.date(1868, 1, 25)),
    ("２０２４－１０－０１", dt.date(2024, 10, 1)),
    ("令和６年１０月１日", dt.date(2024, 10, 1)),
    ("Ｒ６．１０．１", dt.date(2024, 10, 1)),
    ("令和 6年 4月 1日", dt.date(2024, 4, 1)),  # printed forms pad one-digit numbers with a space
    ("  2024-10-01 ", dt.date(2024, 10, 1)),
    ("2024-02-29", dt.date(2024, 2, 29)),
]

NOT_DATES = [
    "平成31年5月1日",  # 令和 by then
    "H31.5.1",
    "昭和64年1月8日",  # 平成 by then
    "S64.1.8",
    "令和元年4月30日",  # still 平成
    "R1.4.30",
    "大正元年7月29日",  # still 明治
    "明治45年7月30日",
    "大正15年12月25日",  # 昭和 by then
    "M1.1.24",  # before 明治
    "R0.5.1",
    "2024-02-30",
    "2023-02-29",
    "2024-13-01",
    "20241301",
    "2024/10/01/1",
    "2024-10",
    "241001",
    "24-10-01",
    "2024-10/01",  # mixed separators
    "令和6年10月",
    "X6.10.1",
    "令和6年10月1",
    "abc",
    "",
    "   ",
]


@pytest.mark.parametrize(("text", "expected"), DATE_FORMS)
def test_each_accepted_date_form(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected
    assert parse_dates(pd.Series([text])).iloc[0] == pd.Timestamp(expected)


@pytest.mark.parametrize("text", NOT_DATES)
def test_invalid_dates_are_none(text: str) -> None:
    assert parse_date(text) is None
    assert parse_dates(pd.Series([text])).isna().all()


def test_era_boundaries() -> None:
    assert parse_date("昭和64年1月7日") == dt.date(1989, 1, 7)
    assert parse_date("昭和64年1月8日") is None
    assert parse_date("平成31年4月30日") == dt.date(2019, 4, 30)
    assert parse_date("平成31年5月1日") is None
    assert parse_date("令和元年5月1日") == dt.date(2019, 5, 1)


def test_parse_dates_is_vectorised_typed_and_keeps_the_index() -> None:
    s = pd.Series(["2024-10-01", None, "R6.10.1", "junk", np.nan, "２０２４／１０／０１"], index=[10, 11, 12, 13, 14, 15])
    out = parse_dates(s)
    assert out.dtype == "datetime64[us]"
    assert list(out.index) == [10, 11, 12, 13, 14, 15]
    assert out.isna().tolist() == [False, True, False, True, True, False]
    assert (out.dropna() == pd.Timestamp("2024-10-01")).all()


def test_parsers_accept_object_and_str_series_alike() -> None:
    values = ["2024-10-01", None, "R6.10.1"]
    as_object, as_str = pd.Series(values, dtype=object), pd.Series(values, dtype="str")
    pd.testing.assert_series_equal(parse_dates(as_object), parse_dates(as_str))


def test_each_distinct_value_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = parsing.parse_date

    def counting(value: str) -> dt.date | None:
        calls.append(value)
        return original(value)

    monkeypatch.setattr(parsing, "parse_date", counting)
    s = pd.Series(["2024-10-01", "R6.10.2", "junk"] * 100_000)
    out = parsing.parse_dates(s)
    assert len(calls) == 3
    assert out.notna().sum() == 200_000


def test_empty_series() -> None:
    assert parse_dates(pd.Series([], dtype="str")).dtype == "datetime64[us]"
    assert len(parse_ints(pd.Series([], dtype="str"))) == 0
    assert len(parse_ids(pd.Series([], dtype="str"))) == 0


def western_forms(day: dt.date) -> list[str]:
    y, m, d = day.year, day.month, day.day
    return [
        day.isoformat(),
        f"{y}/{m:02d}/{d:02d}",
        f"{y}/{m}/{d}",
        f"{y}{m:02d}{d:02d}",
        f"{y}年{m}月{d}日",
    ]


def wareki_forms(day: dt.date) -> list[str]:
    letter, kanji, n = era_of(day)
    m, d = day.month, day.day
    year = "元" if n == 1 else str(n)
    return [
        f"{kanji}{year}年{m}月{d}日",
        f"{kanji}{n}年{m:02d}月{d:02d}日",
        f"{letter}{n}.{m}.{d}",
        f"{letter}{n:02d}.{m:02d}.{d:02d}",
        f"{letter}{n}/{m}/{d}",
        f"{letter}{n:02d}/{m:02d}/{d:02d}",
    ]


@settings(max_examples=300)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_form_of_a_date_parses_back(day: dt.date) -> None:
    forms = western_forms(day) + wareki_forms(day)
    forms += [f.translate(FULL_WIDTH) for f in forms]
    for form in forms:
        assert parse_date(form) == day, form
    parsed = parse_dates(pd.Series(forms))
    assert (parsed == pd.Timestamp(day)).all()


@settings(max_examples=200)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_a_date_is_valid_in_its_own_era_only(day: dt.date) -> None:
    own = era_of(day)[0]
    for letter, kanji, start in ERAS:
        n = day.year - start.year + 1
        expected = day if letter == own else None
        assert parse_date(f"{letter}{n}.{day.month}.{day.day}") == expected
        assert parse_date(f"{kanji}{n}年{day.month}月{day.day}日") == expected


# ----------------------------------------------------------------------------- months

MONTH_FORMS = [
    ("2024-10", "2024-10"),
    ("2024/10", "2024-10"),
    ("2024/1", "2024-01"),
    ("202410", "2024-10"),
    ("2024年10月", "2024-10"),
    ("令和6年10月", "2024-10"),
    ("令和元年5月", "2019-05"),
    ("R6.10", "2024-10"),
    ("R06/10", "2024-10"),
    ("H31.4", "2019-04"),
    ("S64.1", "1989-01"),  # 1989-01-01..07
    ("H1.1", "1989-01"),  # 1989-01-08..31
    ("２０２４－１０", "2024-10"),
    ("令和６年１０月", "2024-10"),
]
NOT_MONTHS = ["2024-13", "2024-00", "202413", "令和元年4月", "H31.5", "S64.2", "R0.5",
              "2024-10-01", "20241001", "24-10", "x", ""]


@pytest.mark.parametrize(("text", "expected"), MONTH_FORMS)
def test_each_accepted_month_form(text: str, expected: str) -> None:
    assert parse_month(text) == expected
    assert parse_months(pd.Series([text])).iloc[0] == expected


@pytest.mark.parametrize("text", NOT_MONTHS)
def test_invalid_months_are_none(text: str) -> None:
    assert parse_month(text) is None
    assert parse_months(pd.Series([text])).isna().all()


@settings(max_examples=300)
@given(st.integers(1900, 2100), st.integers(1, 12))
def test_every_form_of_a_month_parses_back(year: int, month: int) -> None:
    expected = f"{year:04d}-{month:02d}"
    forms = [expected, f"{year}/{month}", f"{year}/{month:02d}", f"{year}{month:02d}", f"{year}年{month}月"]
    for letter, kanji, n in eras_of_month(year, month):
        forms += [f"{kanji}{'元' if n == 1 else n}年{month}月", f"{letter}{n}.{month}", f"{letter}{n:02d}/{month:02d}"]
    forms += [f.translate(FULL_WIDTH) for f in forms]
    for form in forms:
        assert parse_month(form) == expected, form
    assert (parse_months(pd.Series(forms)) == expected).all()


# ------------------------------------------------------------------------------- ints

INT_FORMS = [("1200", 1200), ("1,200", 1200), ("１２００", 1200), ("１，２００", 1200), ("-5", -5), ("+5", 5),
             ("−5", -5), ("0", 0), ("007", 7), (" 42 ", 42), ("1,234,567", 1234567), (str(2**63 - 1), 2**63 - 1)]
NOT_INTS = ["1,20", "12,0000", "1.5", "1200.0", "1 200", "abc", "", "¥1200", "1200円", str(2**63), "--5"]


@pytest.mark.parametrize(("text", "expected"), INT_FORMS)
def test_each_accepted_int_form(text: str, expected: int) -> None:
    out = parse_ints(pd.Series([text]))
    assert out.dtype == "Int64"
    assert out.iloc[0] == expected


@pytest.mark.parametrize("text", NOT_INTS)
def test_invalid_ints_are_na(text: str) -> None:
    assert parse_ints(pd.Series([text])).isna().all()


@given(st.integers(0, 10**9))
def test_every_form_of_an_int_parses_back(n: int) -> None:
    forms = [str(n), f"{n:,}", str(n).translate(FULL_WIDTH), f"{n:,}".translate(FULL_WIDTH), f"-{n:,}"]
    out = parse_ints(pd.Series(forms)).tolist()
    assert out == [n, n, n, n, -n]


# ------------------------------------------------------------------ ids, text, bools, enums


def test_ids_keep_leading_zeros_and_reject_non_digits() -> None:
    s = pd.Series(["0012", "００１２", " 0012 ", "12a", "12-3", "", None, "١٢", "¹²", "0"])  # NFKC: ¹² is 12
    assert parse_ids(s).tolist()[:3] == ["0012", "0012", "0012"]
    assert parse_ids(s).isna().tolist() == [False, False, False, True, True, True, True, True, False, False]
    assert parse_ids(s).dtype == "str"


def test_normalise_text() -> None:
    s = pd.Series([" ｻﾄｳ ﾊﾅｺ ", "\u3000", None, "ＡＢＣ１", "東京都　千代田区", ""])
    assert normalise_text(s).tolist()[0] == "サトウ ハナコ"
    assert normalise_text(s).tolist()[3:5] == ["ABC1", "東京都 千代田区"]
    assert normalise_text(s).isna().tolist() == [False, True, True, False, False, True]


def test_normalise_text_composes_voiced_marks() -> None:
    # pyarrow's own "NFKC" leaves が as か + U+3099; names and enum values must compose.
    s = pd.Series(["ｶﾞｯｺｳ", "か\u3099", "がっこう", None, "ﾊﾟﾊﾟ"])
    assert as_list(normalise_text(s)) == ["ガッコウ", "が", "がっこう", None, "パパ"]


def test_normalise_text_with_the_join_separator_inside_a_value() -> None:
    s = pd.Series(["ｶﾞ\x1fｶﾞ", "ＡＢ", None])
    assert as_list(normalise_text(s)) == ["ガ\x1fガ", "AB", None]


def test_enum_values_with_voiced_marks() -> None:
    values = SOURCES["garbage_pickups"].column("result").values
    assert as_list(parse_enums(pd.Series(["ごみ出しなし", "こ\u3099み出しなし", "ｺﾞﾐ"]), values)) == [
        "no_garbage", "no_garbage", None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("0", False), ("true", True), ("FALSE", False), ("有", True), ("無", False),
     ("はい", True), ("いいえ", False), ("Y", True), ("n", False), ("Ｙ", True), ("１", True)],
)
def test_bools(text: str, expected: bool) -> None:
    out = parse_bools(pd.Series([text]))
    assert out.dtype == "boolean"
    assert out.iloc[0] == expected


def test_invalid_bools_are_na() -> None:
    assert parse_bools(pd.Series(["2", "maybe", "", None])).isna().all()


def test_sex_codes() -> None:
    values = SOURCES["residents"].column("sex").values
    s = pd.Series(["1", "男", "M", "m", "Ｍ", "2", "女", "F", "9", "X", "x", "male", "3", "", None])
    expected = ["male"] * 5 + ["female"] * 3 + ["other"] * 3 + ["male", None, None, None]
    assert as_list(parse_enums(s, values)) == expected


def test_care_level_accepts_full_width_digits_and_spaces() -> None:
    values = SOURCES["care_certifications"].column("care_level").values
    s = pd.Series(["要介護３", "要支援 1", "care_5", "要介護6"])
    assert as_list(parse_enums(s, values)) == ["care_3", "support_1", "care_5", None]


# ----------------------------------------------------------------------------- 個人番号

VALID = "621498320257"  # the example number of python-stdnum's documentation


@pytest.mark.parametrize(
    "text", [VALID, "6214 9832 0257", "6214-9832-0257", "６２１４９８３２０２５７", "６２１４　９８３２　０２５７", "6214ー9832ー0257"]
)
def test_is_my_number_accepts_written_forms(text: str) -> None:
    assert is_my_number(text)


@pytest.mark.parametrize("text", ["621498320258", "62149832025", "6214983202570", "x21498320257", "", "03-1234-5678"])
def test_is_my_number_rejects_others(text: str) -> None:
    assert not is_my_number(text)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_is_my_number_agrees_with_stdnum(prefix: str) -> None:
    number = prefix + stdnum_in.calc_check_digit(prefix)
    assert is_my_number(number) and stdnum_in.is_valid(number)
    for digit in "0123456789":
        candidate = prefix + digit
        assert is_my_number(candidate) == stdnum_in.is_valid(candidate)


def test_first_my_number_finds_the_first_hidden_number() -> None:
    cells = ["memo", None, "", "621498320258", "03-1234-5678", "6214 9832 0257", VALID]
    assert first_my_number(pd.Series(cells)) == 5
    assert first_my_number(pd.Series(cells[:5])) is None
    assert first_my_number(pd.Series([], dtype="str")) is None
    assert first_my_number(pd.Series(["１２３４５６７８９０１２３", "６２１４－９８３２－０２５７"])) == 1


def test_nfkc_of_repeated_values_equals_normalising_each_value():
    """_nfkc normalises each distinct value once when values repeat; same strings either way."""
    import unicodedata

    import pyarrow as pa

    from pipelines.parsing import _nfkc

    values = ["東京都ａ区１－２", "ｶﾞｷﾞ", "か\u3099", None, "東京都ａ区１－２", "plain", "ｶﾞｷﾞ", None] * 3
    out = _nfkc(pa.array(values, pa.large_string())).to_pylist()
    assert out == [None if v is None else unicodedata.normalize("NFKC", v) for v in values]


# ------------------------------------------------- 個人番号 separators: the two scans agree

_VALID = "621498320257"   # 12 digits with a valid check digit (also written 6214 9832 0257)
_EVERY_SPACE = sorted(chr(i) for i in range(0x110000) if chr(i).isspace())


def _separated(digits: str, separators: list[str]) -> str:
    return "".join(d + s for d, s in zip(digits, separators + [""] * 12))


def test_the_separator_sets_cover_every_unicode_space_and_what_nfkc_makes_one() -> None:
    """Recomputed over every code point, so a newer Unicode cannot silently widen the gap."""
    import unicodedata

    assert set(_EVERY_SPACE) <= parsing.MY_NUMBER_SEPARATORS
    assert {"\v", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"} <= parsing.MY_NUMBER_SEPARATORS
    raw = {chr(i) for i in range(0x110000)
           if (n := unicodedata.normalize("NFKC", chr(i))) and set(n) <= parsing.MY_NUMBER_SEPARATORS}
    assert raw == parsing._RAW_SEPARATORS


@pytest.mark.parametrize("separator", _EVERY_SPACE + ["-", "\u2212", "ー", "－", "ｰ", "\u2015"])
def test_a_my_number_split_by_any_separator_is_caught_by_both_scans(separator: str) -> None:
    text = _separated(_VALID, [separator if i in (3, 7) else "" for i in range(12)])
    assert is_my_number(text)
    assert first_my_number(pd.Series(["0012", text, "abc"], dtype="str")) == 1


_SEPARATOR_CHARS = st.sampled_from(sorted(parsing._RAW_SEPARATORS) + ["", "", "x", "."])
_DIGIT_FORMS = st.sampled_from(["ascii", "fullwidth", "mathematical", "circled"])


def _digit(d: str, form: str) -> str:
    if form == "fullwidth":
        return chr(0xFF10 + int(d))
    if form == "mathematical":
        return chr(0x1D7CE + int(d))
    if form == "circled" and d != "0":
        return chr(0x245F + int(d))   # ① .. ⑨, which NFKC makes 1 .. 9
    return d


@settings(max_examples=150, deadline=None)
@given(digits=st.sampled_from([_VALID, "123456789018", "123456789011", "62149832025", "6214983202577"]),
       separators=st.lists(st.lists(_SEPARATOR_CHARS, max_size=3).map("".join), min_size=12, max_size=12),
       form=_DIGIT_FORMS, lead=st.sampled_from(["", " ", "\x1e", "㉑"]))
def test_is_my_number_and_first_my_number_agree_for_every_separator(digits, separators, form, lead) -> None:
    text = lead + "".join(_digit(d, form) + s for d, s in zip(digits, separators))
    found = first_my_number(pd.Series(["", text], dtype="str"))
    assert (found == 1) == is_my_number(text), repr(text)


@settings(max_examples=150, deadline=None)
@given(st.text(st.sampled_from("0123456789１２３④⑩㉑ -－ー\x0b\x1c\x85\u3000\u2028a漢"), max_size=20))
def test_is_my_number_and_first_my_number_agree_on_any_text(text: str) -> None:
    assert (first_my_number(pd.Series([text], dtype="str")) == 0) == is_my_number(text), repr(text)
