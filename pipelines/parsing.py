"""Pure, vectorised parsers for the value forms the data contract accepts.

Every function takes a pandas Series of raw strings (NFKC-normalised or not) and returns a typed
Series with the same index; a value that cannot be parsed becomes NaT/NA and the caller decides
what that means. Columns with few distinct values (dates, months, amounts, codes) are parsed once
per distinct value and mapped back, so a million rows with a few thousand dates cost milliseconds.
Free text and IDs, which are mostly distinct, are normalised a whole column at a time (see _nfkc)
and checked with pyarrow's compute kernels.

Accepted forms (after NFKC, so full-width digits and letters are fine; whitespace inside dates
and months is ignored because printed 和暦 pads one-digit numbers with a space: 令和 6年 4月 1日):

    dates   2024-10-01  2024/10/01  2024/10/1  2024.10.1  20241001  2024年10月1日
            令和6年10月1日  令和元年5月1日  R6.10.1  R06/10/01  H31.4.30  S64-1-7  (also r6.10.1)
    months  2024-10  2024/10  2024.10  202410  2024年10月  令和6年10月  R6.10  R06/10
    ints    1200  1,200  -5  +5  １２００  (commas must group by three)
    bools   1/0  true/false  有/無  はい/いいえ  Y/N  yes/no  (ASCII case-insensitive)

和暦 dates must lie inside their era (平成31年5月1日 is not a date); a month is valid in an era if
any day of it is. 明治 starts on 1868-01-25 (明治元年1月1日 under the old calendar, the day the
era was made to start retroactively); dates before the 1873 calendar reform are read as if they
were Gregorian, which only matters for people born before 1873.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum.jp import in_ as my_number

__all__ = [
    "first_my_number",
    "is_my_number",
    "normalise_text",
    "parse_bools",
    "parse_date",
    "parse_dates",
    "parse_enums",
    "parse_ids",
    "parse_ints",
    "parse_month",
    "parse_months",
]

# (first day, kanji, letter), oldest first; an era ends the day before the next one starts.
ERAS: tuple[tuple[dt.date, str, str], ...] = (
    (dt.date(1868, 1, 25), "明治", "M"),
    (dt.date(1912, 7, 30), "大正", "T"),
    (dt.date(1926, 12, 25), "昭和", "S"),
    (dt.date(1989, 1, 8), "平成", "H"),
    (dt.date(2019, 5, 1), "令和", "R"),
)
_ERA_INDEX = {name: i for i, (_, kanji, letter) in enumerate(ERAS) for name in (kanji, letter)}
_ERA = "|".join(_ERA_INDEX)
_YEAR = r"(?P<year>\d{1,2}|元)"

_WESTERN_DATE = re.compile(
    r"(?P<y>\d{4})(?:(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})|(?P<m2>\d{2})(?P<d2>\d{2})"
    r"|年(?P<m3>\d{1,2})月(?P<d3>\d{1,2})日)"
)
_ERA_DATE = re.compile(
    rf"(?P<era>{_ERA}){_YEAR}(?:(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})"
    r"|年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})日)"
)
_WESTERN_MONTH = re.compile(r"(?P<y>\d{4})(?:[-/.](?P<m>\d{1,2})|(?P<m2>\d{2})|年(?P<m3>\d{1,2})月)")
_ERA_MONTH = re.compile(rf"(?P<era>{_ERA}){_YEAR}(?:[-/.](?P<m>\d{{1,2}})|年(?P<m2>\d{{1,2}})月)")
_INT = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_WHITESPACE = re.compile(r"\s+")
_INT64 = (-(2**63), 2**63 - 1)
# Separators people type inside a 個人番号, after NFKC: every character str.isspace() accepts
# (also \v, \x1c-\x1f, NEL and U+2028/2029, which RE2's \s and \p{Z} miss), hyphens, dashes,
# minus, and the prolonged-sound mark ー that Japanese keyboards produce for "-". One set, spelt
# twice: as a Python class for is_my_number and as an RE2 class (pyarrow) for first_my_number,
# so the two can never disagree about what separates digits.
MY_NUMBER_SEPARATORS = frozenset(
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000" + "-" + "".join(map(chr, range(0x2010, 0x2016))) + "\u2212\u30fc"
)
# Raw characters whose NFKC consists of separators only (full-width hyphen, small em dash,
# half-width ー, superscript minus, ...): before NFKC, a 個人番号 is digits among these.
# tests/test_parsing.py recomputes both sets over every code point.
_RAW_SEPARATORS = MY_NUMBER_SEPARATORS | frozenset("\u207b\u208b\ufe31\ufe32\ufe58\ufe63\uff0d\uff70")


def _re2_class(chars: frozenset[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars)) + "]"


_MY_NUMBER_SEPARATORS = re.compile("[" + "".join(re.escape(c) for c in sorted(MY_NUMBER_SEPARATORS)) + "]")
_RE2_SEPARATOR = _re2_class(MY_NUMBER_SEPARATORS)
# Raw (not yet NFKC) cells that could hold one: nothing but characters that are numbers in any
# script and raw separators. Together with "12 characters or more, or not ASCII" (⑩ or ㉑ expand
# to two digits under NFKC) this keeps every cell is_my_number could accept, and drops names,
# addresses and most IDs before the costly NFKC.
_RE2_MY_NUMBER_SHAPE = rf"^(?:\p{{N}}|{_re2_class(_RAW_SEPARATORS)})+$"

_BOOLS = {
    **dict.fromkeys(("1", "true", "有", "はい", "y", "yes"), True),
    **dict.fromkeys(("0", "false", "無", "いいえ", "n", "no"), False),
}


# ---------------------------------------------------------------------------------- scalars


def _clean(value: Any) -> str | None:
    """NFKC, no whitespace at all, ASCII upper-case (era letters); None for non-strings/blank."""
    if not isinstance(value, str):
        return None
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", value)).upper()
    return text or None


def _era_bounds(era: str) -> tuple[dt.date, dt.date]:
    i = _ERA_INDEX[era]
    last = ERAS[i + 1][0] - dt.timedelta(days=1) if i + 1 < len(ERAS) else dt.date.max
    return ERAS[i][0], last


def _era_year(match: re.Match[str]) -> tuple[dt.date, dt.date, int]:
    """(era start, era end, Gregorian year) of a 和暦 match; year 0 gives an impossible year."""
    start, end = _era_bounds(match["era"])
    n = 1 if match["year"] == "元" else int(match["year"])
    return start, end, start.year + n - 1 if n >= 1 else 0


def parse_date(value: str) -> dt.date | None:
    """One date in any accepted form, or None."""
    text = _clean(value)
    if text is None:
        return None
    try:
        if m := _WESTERN_DATE.fullmatch(text):
            return dt.date(int(m["y"]), int(m["m"] or m["m2"] or m["m3"]), int(m["d"] or m["d2"] or m["d3"]))
        if m := _ERA_DATE.fullmatch(text):
            start, end, year = _era_year(m)
            date = dt.date(year, int(m["m"] or m["m2"]), int(m["d"] or m["d2"]))
            return date if start <= date <= end else None
    except ValueError:  # 2月30日, month 13, year 0
        return None
    return None


def parse_month(value: str) -> str | None:
    """One month ("YYYY-MM") in any accepted form, or None."""
    text = _clean(value)
    if text is None:
        return None
    start, end = dt.date.min, dt.date.max
    if m := _WESTERN_MONTH.fullmatch(text):
        year, month = int(m["y"]), int(m["m"] or m["m2"] or m["m3"])
    elif m := _ERA_MONTH.fullmatch(text):
        start, end, year = _era_year(m)
        month = int(m["m"] or m["m2"])
    else:
        return None
    if year < 1 or not 1 <= month <= 12:
        return None
    first = dt.date(year, month, 1)
    last = first.replace(day=calendar.monthrange(year, month)[1])
    # A month belongs to an era if any of its days does: both S64.1 and H1.1 are 1989-01.
    return f"{year:04d}-{month:02d}" if first <= end and last >= start else None


def _parse_int(value: str) -> int | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().replace("\u2212", "-")  # U+2212 MINUS
    if not _INT.fullmatch(text):
        return None
    number = int(text.replace(",", ""))
    return number if _INT64[0] <= number <= _INT64[1] else None


def _parse_bool(value: str) -> bool | None:
    text = _clean(value)
    return None if text is None else _BOOLS.get(text.casefold())


def _enum_key(value: str) -> str | None:
    text = _clean(value)
    return None if text is None else text.casefold()


def is_my_number(value: str) -> bool:
    """True if `value` is an individual number (個人番号): 12 digits with a valid check digit.

    Whitespace and dashes are ignored, as on the card ("6214 9832 0257"); full-width digits count.
    """
    if not isinstance(value, str):
        return False
    return bool(my_number.is_valid(_MY_NUMBER_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))))


# ------------------------------------------------------------------------------- vectorised


def _arrow(s: pd.Series) -> pa.Array:
    """The Series as one contiguous pyarrow large_string array.

    Contiguous on purpose: pyarrow 25 crashes (segfault) in indices_nonzero on a chunked array
    without chunks, which an empty file produces.
    """
    array = pa.array(s.array if isinstance(s.dtype, pd.StringDtype) else s, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array if pa.types.is_large_string(array.type) else array.cast(pa.large_string())


def _series(array: pa.Array, s: pd.Series) -> pd.Series:
    return pd.Series(array, index=s.index, name=s.name, dtype="str")


_JOIN = "\x1f"  # ASCII unit separator: absent from real text; NFKC neither creates nor removes it


def _nfkc(array: pa.Array) -> pa.Array:
    """NFKC of every string in a large_string array.

    pyarrow's utf8_normalize cannot be used: it never composes, so its "NFKC" is really NFKD
    (が comes back as か + U+3099; pandas GH#64359). Python's unicodedata is right but slow per
    value, so the column is joined into one string, normalised in one call and split again.
    Normalisation cannot cross the separator (a control character is a starter that composes
    with nothing), so this equals normalising each value.
    """
    if len(array) == 0 or pc.all(pc.string_is_ascii(array)).as_py() is not False:
        return array  # ASCII is already NFKC (IDs, codes, most dates): the common case is free
    encoded = pc.dictionary_encode(array)
    if 2 * len(encoded.dictionary) <= len(array):
        # Names and addresses repeat (a household shares its address): normalising each
        # distinct value once and mapping back gives the same strings at a fraction of the cost.
        return pc.take(_nfkc_each(encoded.dictionary), encoded.indices)
    return _nfkc_each(array)


def _nfkc_each(array: pa.Array) -> pa.Array:
    """_nfkc without the shortcuts: one unicodedata call over the joined column."""
    filled = pc.fill_null(array, "")
    if pc.any(pc.match_substring(filled, _JOIN)).as_py():
        values = [None if v is None else unicodedata.normalize("NFKC", v) for v in array.to_pylist()]
        return pa.array(values, pa.large_string())
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(filled)], pa.int64()), filled)
    joined = pc.binary_join(whole, pa.scalar(_JOIN, pa.large_string()))[0].as_py()
    if unicodedata.is_normalized("NFKC", joined):  # a quick check, much cheaper than normalising
        return array
    normalised = pa.array([unicodedata.normalize("NFKC", joined)], pa.large_string())
    parts = pc.split_pattern(normalised, _JOIN)[0].values
    return pc.if_else(pc.is_null(array), pa.scalar(None, pa.large_string()), parts)


def _normalised(s: pd.Series) -> pa.Array:
    """NFKC, surrounding whitespace stripped, empty -> null."""
    text = pc.utf8_trim_whitespace(_nfkc(_arrow(s)))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)


def _map_unique(s: pd.Series, parse: Callable[[str], Hashable | None], dtype: str) -> pd.Series:
    """Parse each distinct value once and map the results back onto the rows."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    parsed = pd.array([parse(u) for u in uniques], dtype=dtype)
    return pd.Series(parsed.take(codes, allow_fill=True), index=s.index, name=s.name)


def normalise_text(s: pd.Series) -> pd.Series:
    """NFKC, surrounding whitespace stripped; blank -> NA."""
    return _series(_normalised(s), s)


def parse_ids(s: pd.Series) -> pd.Series:
    """Digit strings (leading zeros kept, full-width digits normalised); anything else -> NA."""
    text = _normalised(s)
    digits = pc.match_substring_regex(text, r"^[0-9]+$")  # ASCII only: ٣ or ³ are not ID digits
    return _series(pc.if_else(digits, text, pa.scalar(None, text.type)), s)


def parse_dates(s: pd.Series) -> pd.Series:
    """Dates in any accepted form -> datetime64[us]; unparseable -> NaT."""
    return _map_unique(s, parse_date, "datetime64[us]")


def parse_months(s: pd.Series) -> pd.Series:
    """Months in any accepted form -> "YYYY-MM" strings; unparseable -> NA."""
    return _map_unique(s, parse_month, "str")


def parse_ints(s: pd.Series) -> pd.Series:
    """Integers (1200, 1,200, １２００, -5) -> Int64; decimals, words and overflow -> NA."""
    return _map_unique(s, _parse_int, "Int64")


def parse_bools(s: pd.Series) -> pd.Series:
    """Booleans (1/0, true/false, 有/無, はい/いいえ, Y/N) -> boolean; anything else -> NA."""
    return _map_unique(s, _parse_bool, "boolean")


def first_my_number(s: pd.Series) -> int | None:
    """Position (0-based) of the first cell holding an individual number, or None.

    Vectorised filters (length, shape, then exactly 12 digits after NFKC) leave only true
    12-digit cells, whose check digits are then tested in order until the first valid one.
    """
    raw = _arrow(s)
    maybe = pc.or_(pc.greater_equal(pc.utf8_length(raw), 12), pc.invert(pc.string_is_ascii(raw)))
    positions = pc.indices_nonzero(pc.fill_null(maybe, False))
    for keep in (
        lambda cells: pc.match_substring_regex(cells, _RE2_MY_NUMBER_SHAPE),
        lambda cells: pc.match_substring_regex(
            pc.replace_substring_regex(_nfkc(cells), _RE2_SEPARATOR, ""), "^[0-9]{12}$"
        ),
    ):
        if len(positions):
            positions = pc.filter(positions, pc.fill_null(keep(pc.take(raw, positions)), False))
    for position, value in zip(positions.to_pylist(), pc.take(raw, positions).to_pylist()):
        if is_my_number(value):
            return position
    return None


def parse_enums(s: pd.Series, values: Mapping[str, str]) -> pd.Series:
    """Codes -> canonical values via `values` (ASCII case and whitespace ignored); unknown -> NA."""
    lookup = {_enum_key(spelling): canonical for spelling, canonical in values.items()}
    return _map_unique(s, lambda v: lookup.get(_enum_key(v)), "str")
