"""Fuzzing the readers (issue 12, item 10).

Every spelling the data contract allows (encodings, header forms, date, month and number forms,
CSV freedoms) reads to exactly the typed rows of its canonical twin; damaged files (random bytes
spliced in, stray quotes) are read or refused with a ContractError, never an unhandled exception,
and whatever is read accounts for every physical line (read_source checks it and raises
LineAccountingError otherwise).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.sources import SOURCES
from pipelines.parsing import ERAS
from pipelines.decoding import _parse_csv_exact, _parse_csv_fast, physical_lines
from pipelines.reading import ContractError, read_source

SOURCE = SOURCES["care_premiums"]   # id, month, int, date and enum columns, a two-column key
MONTH = "2026-10"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="mimamori-fuzz-"))
_COUNTER = itertools.count()


def _file(data: bytes, suffix: str = ".csv") -> Path:
    path = _DIR / f"care_premiums-{next(_COUNTER)}{suffix}"
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------ canonical rows

_ROW = st.fixed_dictionaries({
    "billing_month": st.tuples(st.integers(2019, 2026), st.integers(1, 12)).filter(lambda ym: ym <= (2026, 10)),
    "amount_due": st.integers(0, 2_000_000),
    "amount_paid": st.integers(0, 2_000_000),
    "paid_date": st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2026, 10, 31)),
    "collection": st.sampled_from([None, "special", "ordinary"]),
})
_ROWS = st.lists(st.tuples(st.from_regex(r"00[0-9]{6}", fullmatch=True), _ROW), min_size=0, max_size=12,
                 unique_by=lambda r: (r[0], r[1]["billing_month"]))


def _canonical(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in SOURCE.columns])
    for rid, r in rows:
        y, m = r["billing_month"]
        writer.writerow([rid, f"{y:04d}-{m:02d}", r["amount_due"], r["amount_paid"],
                         r["paid_date"].isoformat() if r["paid_date"] else "", r["collection"] or ""])
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- the contract's spellings

def _era(day: dt.date) -> tuple[str, str, int]:
    start, kanji, letter = [e for e in ERAS if e[0] <= day][-1]
    return kanji, letter, day.year - start.year + 1


def _date_forms(day: dt.date) -> list[str]:
    kanji, letter, n = _era(day)
    year = "元" if n == 1 else str(n)
    return [day.isoformat(), f"{day.year}/{day.month:02d}/{day.day:02d}", f"{day.year}/{day.month}/{day.day}",
            day.strftime("%Y%m%d"), f"{kanji}{year}年{day.month}月{day.day}日", f"{letter}{n}.{day.month}.{day.day}",
            f"{letter}{n:02d}/{day.month:02d}/{day.day:02d}", f"{kanji} {n}年 {day.month}月 {day.day}日"]


def _month_forms(y: int, m: int) -> list[str]:
    kanji, letter, n = _era(dt.date(y, m, 28))
    return [f"{y:04d}-{m:02d}", f"{y}/{m:02d}", f"{y}{m:02d}", f"{kanji}{n}年{m}月", f"{letter}{n}.{m}"]


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _int_forms(n: int) -> list[str]:
    return [str(n), f"{n:,}", _full_width(str(n)), _full_width(f"{n:,}")]


_ENUM = {"special": ["special", "特別徴収", "特徴", "SPECIAL", " Special "],
         "ordinary": ["ordinary", "普通徴収", "普徴", "ＯＲＤＩＮＡＲＹ"]}
_ALIASES = {c.name: [c.name, *c.aliases] for c in SOURCE.columns}


@st.composite
def _spelled(draw, rows):
    """The same rows in one of the spellings the contract accepts, with an unknown memo column."""
    pick = lambda options: draw(st.sampled_from(options))   # noqa: E731
    headers = []
    for column in SOURCE.columns:
        name = pick(_ALIASES[column.name])
        name = pick([name, f" {name} ", f"\u3000{name}", _full_width(name) if name.isascii() else name])
        headers.append(name)
    memo = draw(st.booleans())
    order = draw(st.permutations(range(len(headers) + memo)))
    body = []
    for rid, r in rows:
        y, m = r["billing_month"]
        cells = [pick([rid, _full_width(rid), f" {rid} "]), pick(_month_forms(y, m)),
                 pick(_int_forms(r["amount_due"])), pick(_int_forms(r["amount_paid"])),
                 pick(_date_forms(r["paid_date"])) if r["paid_date"] else pick(["", " "]),
                 pick(_ENUM[r["collection"]]) if r["collection"] else ""]
        if memo:
            # an embedded line end is CRLF or LF: csv.writer quotes those, not a lone CR
            pieces = st.sampled_from(["あ", "漢", "a", " ", ",", '"', "\n", "\r\n", "1"])
            cells.append("".join(draw(st.lists(pieces, max_size=6))))
        body.append(cells)
    if memo:
        headers.append("memo")
    quoting = pick([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    ending = pick(["\n", "\r\n"])
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=ending)
    writer.writerow([headers[i] for i in order])
    writer.writerows([[cells[i] for i in order] for cells in body])
    text = out.getvalue()
    if not draw(st.booleans()):
        text = text[: -len(ending)]              # no line end after the last line
    encoding = pick(["utf-8", "utf-8-sig", "cp932"])
    return text.encode(encoding)


def _typed(path: Path) -> pd.DataFrame:
    read = read_source(path, SOURCE, MONTH)
    assert read.quarantine.empty, read.quarantine["reason"].tolist()
    lines = read.lines
    assert lines["physical"] == lines["header"] + lines["blank"] + lines["accepted"] + lines["quarantined"]
    return read.rows.drop(columns=["_line"])


@FUZZ
@given(st.data(), _ROWS)
def test_every_accepted_spelling_reads_to_the_rows_of_its_canonical_twin(data, rows) -> None:
    canonical = _typed(_file(_canonical(rows)))
    assert len(canonical) == len(rows)
    spelled = _typed(_file(data.draw(_spelled(rows))))
    pd.testing.assert_frame_equal(spelled, canonical)


# ------------------------------------------------------------------------------ damage

def _read_or_refuse(data: bytes) -> None:
    """Either read (lines all accounted, checked inside read_source) or a ContractError."""
    try:
        read = read_source(_file(data), SOURCE, MONTH)
    except ContractError as refused:
        message = str(refused)
        assert "care_premiums-" in message and "\n" not in message
        return
    assert len(read.rows) + len(read.quarantine) <= read.lines["physical"]
    assert set(read.quarantine.get("reason", pd.Series(dtype=str))) != {""}


_NOISE = st.binary(min_size=1, max_size=6) | st.sampled_from(
    [b'"', b'""', b'"\n', b"\n", b"\r", b"\r\n", b",", b"\x00", b"\xef\xbb\xbf", b"\x82", b"\x85", b"\xe3\x81"])


@FUZZ
@given(_ROWS.filter(len), st.lists(st.tuples(st.floats(0, 1), _NOISE), min_size=1, max_size=4))
def test_random_bytes_spliced_into_a_valid_file_are_read_or_refused(rows, splices) -> None:
    data = bytearray(_canonical(rows))
    for where, noise in splices:
        at = int(where * len(data))
        data[at:at] = noise
    _read_or_refuse(bytes(data))


@FUZZ
@given(_ROWS.filter(len), st.lists(st.floats(0, 1), min_size=1, max_size=3), st.sampled_from(["\n", "\r\n", "\r"]))
def test_stray_quotes_are_read_or_refused(rows, places, ending) -> None:
    text = _canonical(rows).decode().replace("\n", ending)
    for where in places:
        at = int(where * len(text))
        text = text[:at] + '"' + text[at:]
    _read_or_refuse(text.encode())


_PLAIN = st.text(st.sampled_from("ab1 "), max_size=4)
_CELL = st.one_of(
    _PLAIN, _PLAIN, _PLAIN,
    st.text(st.sampled_from('ab,"\n '), max_size=4).map(lambda t: '"' + t.replace('"', '""') + '"'),  # quoted
    st.text(st.sampled_from('ab1",\n\r '), max_size=4),                                                # raw
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_CELL, min_size=2, max_size=4), min_size=1, max_size=6), st.sampled_from(["\n", "\r\n"]),
       st.booleans())
def test_the_fast_reader_reads_what_the_exact_reader_reads_whenever_it_reads(table, ending, last_end) -> None:
    """The fast path is taken only for files the exact reader reads the same way, line numbers too."""
    text = ending.join(",".join(row) for row in table) + (ending if last_end else "")
    data = text.encode()
    fast = _parse_csv_fast(data, "utf-8")
    try:
        exact = _parse_csv_exact(Path("x.csv"), data, "utf-8")
    except ContractError:
        assert fast is None
        return
    assert exact.physical == physical_lines(data)
    if fast is None:
        return
    assert fast.header == exact.header and fast.lines.tolist() == exact.lines.tolist()
    assert [c.to_pylist() for c in fast.columns] == [c.to_pylist() for c in exact.columns]
    assert (fast.physical, fast.header_lines, fast.blank) == (exact.physical, exact.header_lines, exact.blank)


def test_a_parquet_delivery_counts_rows_not_lines() -> None:
    rows = pd.DataFrame({"resident_id": ["001", "002", "003"], "billing_month": ["2026-09", "2026-13", "2026-10"],
                         "amount_due": [100, 200, 300], "amount_paid": [100, 0, 300]})
    path = _DIR / "care_premiums.parquet"
    rows.to_parquet(path)
    read = read_source(path, SOURCE, MONTH)
    assert read.lines == {"unit": "rows", "physical": 3, "header": 0, "blank": 0, "accepted": 2,
                          "quarantined": 1, "refused": 0, "multiline_records": 0}


@pytest.mark.parametrize("text, lines", [
    ("a\nb", 2), ("a\nb\n", 2), ("a\nb\n\n", 3), ("a\r\nb\r\n", 2), ("a\rb\r", 2), ("a\r\rb", 3), ("", 0),
    ("a\x85b\u2028c\n", 1),   # NEL and LINE SEPARATOR are characters inside a line, as in RFC 4180
])
def test_physical_lines_are_counted_as_both_csv_readers_split_them(text: str, lines: int) -> None:
    assert physical_lines(text.encode()) == lines
