"""One delivered file -> a typed canonical table plus quarantined rows, or a refusal.

A file is refused whole (ContractError) when it cannot be trusted at all: undecodable bytes, a
missing required column, a column named twice, or any trace of an individual number (個人番号),
which 番号法 Art. 29 forbids us to hold. Everything wrong with a single row is quarantined with
a reason instead, so one bad row never costs a month.

Error messages name the file, line and column but never a cell value: they end up in logs and
audit records outside the custodian's zone.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contract.sources import Column, Source
from contract.months import check_month, month_end
from pipelines.parsing import (
    first_my_number,
    is_my_number,
    normalise_text,
    parse_bools,
    parse_dates,
    parse_enums,
    parse_ids,
    parse_ints,
    parse_months,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet")

# Header words that announce an individual number, compared after _squash().
_MY_NUMBER_HEADERS = ("個人番号", "マイナンバー", "mynumber", "kojinbango", "kojinbangō", "individualnumber")

_PARSERS = {
    "id": parse_ids,
    "text": normalise_text,
    "date": parse_dates,
    "month": parse_months,
    "int": parse_ints,
    "bool": parse_bools,
}
_UNPARSEABLE = {
    "id": "not digits",
    "text": "blank after normalisation",  # cannot happen: NFKC never blanks a non-blank cell
    "date": "not a date",
    "month": "not a month",
    "int": "not an integer",
    "bool": "not a boolean",
    "enum": "unknown value",
}


class ContractError(Exception):
    """The whole file is refused. The message names the file and the line or column, and NEVER contains a data value."""


class LineAccountingError(RuntimeError):
    """A physical line of a delivered file is neither header, blank, accepted nor quarantined.

    Always a bug in mimamori, never the file's fault: the month must stop rather than report
    success with rows missing.
    """


LINE_KINDS = ("header", "blank", "accepted", "quarantined", "refused")


def check_lines(path: Path | str, lines: dict) -> dict:
    """Raise LineAccountingError unless every physical line (Parquet: row) is counted exactly once."""
    counted = sum(int(lines[kind]) for kind in LINE_KINDS)
    if counted != int(lines["physical"]) or min(int(lines[kind]) for kind in LINE_KINDS) < 0:
        parts = ", ".join(f"{kind} {lines[kind]}" for kind in LINE_KINDS)
        raise LineAccountingError(f"{path}: {lines['physical']} physical {lines['unit']} but {parts} "
                                  f"(sum {counted}); this is a bug in mimamori, the month is not ingested")
    return lines


@dataclass
class SourceRead:
    source: str
    path: Path
    # Good rows: every canonical column, typed (id/text/month/enum -> str, date -> datetime64[us],
    # int -> Int64, bool -> boolean; absent optional columns all-NA), plus "_line".
    rows: pd.DataFrame
    # Bad rows: canonical columns as the raw strings, "_line", and "reason" ("; "-joined).
    quarantine: pd.DataFrame
    unknown_columns: list[str]  # header names not in the contract (their columns are dropped)
    encoding: str  # "utf-8", "utf-8-sig", "cp932" or "parquet"
    # Every physical line of the file counted once (see read_source): unit ("lines", or "rows"
    # for Parquet), physical, header, blank, accepted, quarantined, refused, multiline_records.
    lines: dict = field(default_factory=dict)
    # Physical lines each good row spans (1 unless a quoted cell holds a line break), aligned
    # with `rows`, so that rows moved to quarantine later move their lines too.
    spans: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class _Raw:
    """A delivered file as strings, before the contract is applied."""

    header: list[str]
    columns: list[pa.ChunkedArray | pa.Array]  # raw cells of each header column, header row excluded
    lines: np.ndarray  # line number of each row (its first physical line)
    encoding: str
    header_line: int = 1
    # Rows whose field count differs from the header's: (line, fields). They cannot be mapped
    # to columns, so they are quarantined whole (always one physical line: see _parse_csv_exact).
    malformed: list[tuple[int, list[str]]] = field(default_factory=list)
    # Line accounting: physical lines of the decoded text (Parquet: rows), lines of the header
    # record, blank lines, and the last physical line of each row (= `lines` unless multi-line).
    physical: int = 0
    header_lines: int = 1
    blank: int = 0
    ends: np.ndarray | None = None
    unit: str = "lines"

    @property
    def spans(self) -> np.ndarray:
        return (self.ends - self.lines + 1) if self.ends is not None else np.ones(len(self.lines), dtype=np.int64)


# ------------------------------------------------------------------------------ public API


def delivery_file(month_dir: Path, source: str) -> Path | None:
    """The file delivering `source` in a month folder, or None; two candidates are refused."""
    found = [month_dir / f"{source}{suffix}" for suffix in SUFFIXES]
    found = [path for path in found if path.is_file()]
    if len(found) > 1:
        names = ", ".join(path.name for path in found)
        raise ContractError(f"{month_dir}: {source} is delivered more than once ({names}); keep one")
    return found[0] if found else None


def read_source(path: Path, source: Source, delivery_month: str | None = None) -> SourceRead:
    """Read one delivered file of `source` against the contract.

    With `delivery_month` ("YYYY-MM"), observation dates after that month's end are
    quarantined; without it, those after today are.
    """
    path = Path(path)
    raw = _read_parquet(path, source) if path.name.endswith(".parquet") else _read_csv(path)
    _refuse_my_numbers(path, raw)
    positions, unknown = _match_header(path, raw.header, source)
    absent = pa.nulls(len(raw.lines), pa.large_string())
    strings = {
        c.name: pd.Series(raw.columns[positions[c.name]] if c.name in positions else absent, dtype="str")
        for c in source.columns
    }
    typed = {c.name: _parse(c, strings[c.name]) for c in source.columns}
    problems = _problems(source, strings, typed, _Limit.of(delivery_month))
    _refuse_swallowed_lines(path, raw, problems)
    rows, quarantine = _split(strings, typed, raw, problems)
    spans = raw.spans
    good = ~np.logical_or.reduce([mask for mask, _ in problems])
    lines = check_lines(path, {
        "unit": raw.unit,
        "physical": raw.physical,
        "header": raw.header_lines,
        "blank": raw.blank,
        "accepted": int(spans[good].sum()),
        "quarantined": int(spans[~good].sum()) + len(raw.malformed),
        "refused": 0,  # a refused file raises ContractError and is never recorded
        "multiline_records": int((spans[good] > 1).sum()),
    })
    return SourceRead(source.name, path, rows, quarantine, unknown, raw.encoding, lines, spans[good])


def _refuse_swallowed_lines(path: Path, raw: _Raw, problems: list[Problem]) -> None:
    """Refuse the file if a record spanning several lines fails the contract.

    A quoted cell may hold a line break (a memo), and such a record is accepted when it fits. One
    that does not fit is the mark of a missing or stray quote, which swallows the rows after it:
    quarantining the merged record would hide them (the issue-12 delivery lost 26 rows that way),
    and no reader can tell which of the swallowed lines were meant as rows. So the file is refused,
    naming the line where the quote opens (the record's first line: its first line break inside
    quotes comes after a quote opened on that line).
    """
    if raw.ends is None or not len(raw.lines):
        return
    multi = raw.ends > raw.lines
    if not multi.any():
        return
    for mask, reason in problems:
        hit = np.flatnonzero(mask & multi)
        if len(hit):
            i = int(hit[0])
            raise _swallowed(path, int(raw.lines[i]), int(raw.ends[i]), reason)


def _never_closes(path: Path, line: int) -> ContractError:
    return ContractError(
        f"{path} line {line}: a quote (\") opens a field here and never closes; every line after it would be "
        "swallowed into that field, so the file is refused. Close or remove the quote and deliver the file again")


def _swallowed(path: Path, start: int, end: int, what: str) -> ContractError:
    return ContractError(
        f"{path} line {start}: a quoted field opens here and runs to line {end}, and the record it makes "
        f"fails the contract ({what}); a quote (\") is probably missing or stray. The file is refused "
        "because the lines it swallowed cannot be told from the quoted text; fix the quote and deliver it again")


def record_texts(path: Path, lines: list[int], spans: list[int] | None = None) -> list[str | None]:
    """The delivered text of records, by first physical line and lines spanned (default 1).

    For the custodian's quarantine: the raw record exactly as delivered (decoded, line ends
    removed), whatever column its values landed in. Parquet rows come back as JSON of the row's
    values as text ("line" n is row n - 1, as in read_source). None for a line not in the file.
    """
    path = Path(path)
    spans = [1] * len(lines) if spans is None else list(spans)
    if path.name.endswith(".parquet"):
        table = pq.read_table(path)
        out: list[str | None] = []
        for line in lines:
            if not 2 <= line < table.num_rows + 2:
                out.append(None)
                continue
            row = table.slice(line - 2, 1).to_pylist()[0]
            out.append(json.dumps({k: None if v is None else str(v) for k, v in row.items()}, ensure_ascii=False))
        return out
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    data, _ = _to_utf8(path, data)
    physical = _physical_lines(data)
    if data.count(b"\r") == data.count(b"\r\n"):
        # LF or CRLF: line starts from the positions of LF (an int array, not a million strings)
        breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        starts = np.concatenate([[0], breaks + 1])
        stops = np.concatenate([breaks, [len(data)]])

        def text(line: int, span: int) -> str:
            chunk = data[starts[line - 1]:stops[line + span - 2]]
            return chunk.replace(b"\r\n", b"\n").rstrip(b"\r").decode("utf-8", "replace")
    else:
        contents = re.split(rb"\r\n|\r|\n", data)

        def text(line: int, span: int) -> str:
            return b"\n".join(contents[line - 1:line - 1 + span]).decode("utf-8", "replace")
    return [text(line, span) if 1 <= line and line + span - 1 <= physical else None
            for line, span in zip(lines, spans)]


# ------------------------------------------------------------------------------- decoding


def _read_csv(path: Path) -> _Raw:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise ContractError(f"{path}: not a readable gzip file") from None
    data, encoding = _to_utf8(path, data)
    if not data or data.isspace():  # isspace stops at the first other byte; strip would copy
        raise ContractError(f"{path}: empty file (no header)")
    return _parse_csv_fast(data, encoding) or _parse_csv_exact(path, data, encoding)


def _is_utf8(data: bytes) -> bool:
    # pyarrow validates 100 MB in tens of milliseconds, ten times faster than bytes.decode.
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _decode_error_at(data: bytes, encoding: str) -> int:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        return error.start
    return len(data)


def _to_utf8(path: Path, data: bytes) -> tuple[bytes, str]:
    """The file's text as UTF-8 bytes, and the encoding it was delivered in."""
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8):] if bom else data
    if _is_utf8(body):
        return body, "utf-8-sig" if bom else "utf-8"
    bad = _decode_error_at(body, "utf-8")
    # A CP932 file stops being UTF-8 at its first non-ASCII byte. Valid multi-byte UTF-8 before
    # the bad byte (or a BOM) means a damaged UTF-8 file, which must not be read as CP932 mojibake.
    if not bom and body[:bad].isascii():
        try:
            return body.decode("cp932").encode("utf-8"), "cp932"
        except UnicodeDecodeError as error:
            bad = max(bad, error.start)  # the corrupt byte is where the CP932 reading stopped
    line = body.count(b"\n", 0, bad) + 1
    raise ContractError(f"{path} line {line}: bytes that are neither UTF-8 nor CP932")


def _physical_lines(data: bytes) -> int:
    """Physical lines of a (UTF-8) text, as both CSV readers split it.

    LF, CRLF and a lone CR each end a line; a line end at the very end of the file opens no new
    line, so "a\\nb" and "a\\nb\\n" both have 2 lines and "a\\nb\\n\\n" has 3 (the last one blank).
    Other Unicode line separators (NEL, U+2028) are characters inside a line, as in RFC 4180.
    """
    if not data:
        return 0
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (0 if data.endswith((b"\n", b"\r")) else 1)


def _simple_lines(data: bytes) -> bool:
    """No lone CR and no empty line: then a table with one row per physical line has one record
    per line, and the fast reader's line numbers are exact."""
    if data.count(b"\r") != data.count(b"\r\n"):
        return False
    return not (data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data)


def _ends_in_open_quote(record: str) -> bool:
    """True if a CSV record (possibly several lines) ends inside a quoted field."""
    try:
        for _ in csv.reader(io.StringIO(record, newline=""), strict=True):
            pass
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            return True
        # strict mode stopped early at a quote followed by text ("ab"cd, which the lenient
        # reader accepts as abcd): follow the lenient reader's states by hand.
        return _open_quote_by_hand(record)
    return False


def _open_quote_by_hand(record: str) -> bool:
    quoted = after_quote = False
    start = True
    for ch in record:
        if quoted:
            if ch == '"':
                quoted, after_quote = False, True
            continue
        if after_quote and ch == '"':  # "" inside a quoted field: an escaped quote
            quoted, after_quote = True, False
            continue
        after_quote = False
        if ch in ",\r\n":
            start = True
        elif start and ch == '"':
            quoted, start = True, False
        else:
            start = False
    return quoted


def _parse_csv_fast(data: bytes, encoding: str) -> _Raw | None:
    """pyarrow's multi-threaded reader; None if the file needs the exact reader for line numbers.

    Line numbers are trivial when every record is one physical line; a blank line, a line break
    inside a quoted cell or a row with the wrong field count breaks that, and such (rare) files go
    to _parse_csv_exact instead.
    """
    # Every header field needs an explicit string type, else pyarrow would turn 007 into 7.
    # The commas of the first 64 KiB bound the field count from above.
    fields = data[: 1 << 16].count(b",") + 1
    invalid: list[int] = []

    def skip(_row: object) -> str:
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.large_string() for i in range(fields)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    physical = _physical_lines(data)
    # One column: a line of spaces would be a row here and a blank line to the exact reader (with
    # two or more, pyarrow rejects it as a short row). No contract source has a single column.
    if invalid or table.num_rows != physical or table.num_columns < 2 or not _simple_lines(data):
        return None
    if any(not pa.types.is_large_string(t) for t in table.schema.types):
        return None
    # Only the last record can end inside an open quote here (an earlier one would have
    # swallowed a line); the exact reader refuses it, naming the line.
    last = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
    if b'"' in last and _ends_in_open_quote(last.decode("utf-8")):
        return None
    header = [table.column(i)[0].as_py() for i in range(table.num_columns)]
    body = table.slice(1)
    lines = np.arange(2, body.num_rows + 2, dtype=np.int64)
    return _Raw(header, [body.column(i) for i in range(body.num_columns)], lines, encoding,
                physical=physical, header_lines=1, blank=0, ends=lines)


def _parse_csv_exact(path: Path, data: bytes, encoding: str) -> _Raw:
    """The standard library's reader, which tracks physical lines (slower, for irregular files).

    Every physical line ends up in exactly one record: the header, a blank line (empty or only
    whitespace), a row, or a malformed row. A record that ends inside an open quote, or that spans
    several lines without fitting the header, has swallowed lines: the file is refused, naming the
    line where the quote opens (see _refuse_swallowed_lines for records that fit but fail a column).
    """
    text = data.decode("utf-8")
    pulled: list[str] = []  # the physical lines of the record being read

    def source():
        for physical_line in io.StringIO(text, newline=""):
            pulled.append(physical_line)
            yield physical_line

    reader = csv.reader(source())
    header: list[str] | None = None
    header_line = header_lines = 1
    blank = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    ends: list[int] = []
    malformed: list[tuple[int, list[str]]] = []
    previous = 0
    record = ""
    try:
        for fields in reader:
            line, previous = previous + 1, reader.line_num
            record = "".join(pulled)
            pulled.clear()
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                blank += previous - line + 1
            elif header is None:
                header, header_line, header_lines = fields, line, previous - line + 1
            elif len(fields) != len(header):
                if previous > line:
                    if _ends_in_open_quote(record):
                        raise _never_closes(path, line)
                    raise _swallowed(path, line, previous, f"{len(fields)} fields, expected {len(header)}")
                malformed.append((line, fields))
            else:
                rows.append(fields)
                lines.append(line)
                ends.append(previous)
    except csv.Error as error:
        detail = "a field longer than the CSV limit starts here (probably a quote that never closes)" \
            if "field larger" in str(error) else "not readable as CSV"
        raise ContractError(f"{path} line {previous + 1}: {detail}") from None
    if record and _ends_in_open_quote(record):
        raise _never_closes(path, previous - _physical_lines(record.encode()) + 1)
    if header is None:
        raise ContractError(f"{path}: empty file (no header)")
    columns = [pa.chunked_array([pa.array([r[i] for r in rows], pa.large_string())]) for i in range(len(header))]
    return _Raw(header, columns, np.array(lines, dtype=np.int64), encoding, header_line, malformed,
                physical=_physical_lines(data), header_lines=header_lines, blank=blank,
                ends=np.array(ends, dtype=np.int64))


def _read_parquet(path: Path, source: Source) -> _Raw:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError):
        raise ContractError(f"{path}: not a readable Parquet file") from None
    lookup = _header_lookup(source)
    months = {c.name for c in source.columns if c.type == "month"}
    columns = [
        _parquet_strings(path, i, name, table.column(i), month=lookup.get(_header_key(name)) in months)
        for i, name in enumerate(table.column_names)
    ]
    # Parquet has rows, not lines: the accounting counts rows (the "line" of a row is its
    # position + 1, as if a header line came first, so messages read the same as for a CSV).
    return _Raw(list(table.column_names), columns, np.arange(2, table.num_rows + 2, dtype=np.int64), "parquet",
                physical=table.num_rows, header_lines=0, blank=0, unit="rows")


def _parquet_strings(path: Path, i: int, name: str, column: pa.ChunkedArray, month: bool) -> pa.ChunkedArray:
    """A typed Parquet column as the strings a CSV would have carried."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        # A zoned timestamp is formatted in its own zone, so midnight JST stays the same day.
        return pc.strftime(column, "%Y-%m" if month else "%Y-%m-%d").cast(pa.large_string())
    if pa.types.is_floating(column.type):  # NaN is how pandas writes a missing number
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    if pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        # pandas writes integer columns with gaps as floats and databases write NUMERIC as
        # decimals: 1200.0 means 1200. A safe cast fails on any fraction, which then stays.
        try:
            column = column.cast(pa.int64())
        except pa.ArrowInvalid:
            pass
    try:
        return column.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        message = f"{path}: {_label(i, name)} has a type ({column.type}) that cannot be read as text"
        raise ContractError(message) from None


# ------------------------------------------------------------------ 個人番号 and the header


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-・.]", "", unicodedata.normalize("NFKC", name)).casefold()


def _label(i: int, name: str) -> str:
    """A column for an error message. A header with a long digit run may be a data value (a
    file without a header row), so it is named by position only."""
    if re.search(r"\d{4}", unicodedata.normalize("NFKC", name)) or len(name) > 40:
        return f"column {i + 1}"
    return f"column {i + 1} ({name.strip()!r})"


def _refusal(path: Path, line: int, i: int, name: str, verb: str = "holds") -> ContractError:
    return ContractError(f"{path} line {line}, {_label(i, name)}: {verb} an individual number (個人番号); "
                         "the whole file is refused and must not be stored (番号法 Art. 29)")


def _refuse_my_numbers(path: Path, raw: _Raw) -> None:
    """Refuse the file if a header names an individual number or any cell holds one."""
    for i, name in enumerate(raw.header):
        if any(word in _squash(name) for word in _MY_NUMBER_HEADERS):
            raise _refusal(path, raw.header_line, i, name, verb="names")
        if is_my_number(name):
            raise _refusal(path, raw.header_line, i, name)
    for i, (name, column) in enumerate(zip(raw.header, raw.columns)):
        hit = first_my_number(pd.Series(column, dtype="str"))
        if hit is not None:
            raise _refusal(path, int(raw.lines[hit]), i, name)
    for line, fields in raw.malformed:
        for i, value in enumerate(fields):
            if is_my_number(value):
                raise _refusal(path, line, i, raw.header[i] if i < len(raw.header) else "")


def _header_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().strip("\ufeff").casefold()


def _header_lookup(source: Source) -> dict[str, str]:
    """Normalised canonical names and aliases -> canonical name."""
    return {_header_key(n): c.name for c in source.columns for n in (c.name, *c.aliases)}


def _match_header(path: Path, header: list[str], source: Source) -> tuple[dict[str, int], list[str]]:
    """Canonical column -> position in the file, and the header names the contract does not know."""
    lookup = _header_lookup(source)
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for i, name in enumerate(header):
        canonical = lookup.get(_header_key(name))
        if canonical is None:
            unknown.append(name.strip() or f"(unnamed column {i + 1})")
        elif canonical in positions:
            first = header[positions[canonical]].strip()
            raise ContractError(f"{path}: column {canonical} appears twice ({first!r} and {name.strip()!r})")
        else:
            positions[canonical] = i
    missing = [c for c in source.columns if c.required and c.name not in positions]
    if missing:
        names = ", ".join(f"{c.name} ({'/'.join(c.aliases)})" if c.aliases else c.name for c in missing)
        hint = ""
        if not positions:
            # Unknown header names are not echoed: without a header row they are data values.
            hint = (f"; none of the {len(header)} header names is known: is the header row missing, "
                    "or is the file not comma-separated?")
        raise ContractError(f"{path}: missing required column(s) {names}{hint}")
    return positions, unknown


# ------------------------------------------------------------------------- row problems


def _parse(column: Column, raw: pd.Series) -> pd.Series:
    if column.type == "enum":
        return parse_enums(raw, column.values or {})
    return _PARSERS[column.type](raw)


@dataclass(frozen=True)
class _Limit:
    """The latest date an observation in the file may carry, and what to say when it is later."""

    date: pd.Timestamp
    month: str
    reason: str

    @classmethod
    def of(cls, delivery_month: str | None) -> _Limit:
        if delivery_month is not None:
            return cls(month_end(delivery_month), check_month(delivery_month), "after delivery month end")
        today = pd.Timestamp.today().normalize().as_unit("us")
        return cls(today, today.strftime("%Y-%m"), "in the future")


Problem = tuple[np.ndarray, str]  # (rows affected, reason)


def _blank(raw: pd.Series) -> np.ndarray:
    trimmed = pc.utf8_trim_whitespace(pa.array(raw.array))
    return pc.fill_null(pc.equal(trimmed, ""), True).to_numpy(zero_copy_only=False)


def _column_problems(column: Column, raw: pd.Series, typed: pd.Series, limit: _Limit) -> list[Problem]:
    blank = _blank(raw)
    problems = [(~blank & typed.isna().to_numpy(), f"{column.name}: {_UNPARSEABLE[column.type]}")]
    if column.required:
        problems.append((blank, f"{column.name}: missing"))
    if column.nonnegative:
        problems.append(((typed < 0).fillna(False).to_numpy(dtype=bool), f"{column.name}: negative"))
    if column.type in ("date", "month") and not column.may_be_future:
        late = typed > (limit.date if column.type == "date" else limit.month)
        problems.append((late.fillna(False).to_numpy(dtype=bool), f"{column.name}: {limit.reason}"))
    return problems


def _duplicates(source: Source, typed: dict[str, pd.Series]) -> Problem:
    """Every row whose key occurs more than once: we cannot know which of them is right."""
    keys = pd.DataFrame({name: typed[name] for name in source.key})
    required = [name for name in source.key if source.column(name).required]
    complete = keys[required].notna().all(axis=1).to_numpy()
    duplicated = keys.duplicated(keep=False).to_numpy() & complete
    return duplicated, f"duplicate key ({', '.join(source.key)})"


def _problems(
    source: Source, strings: dict[str, pd.Series], typed: dict[str, pd.Series], limit: _Limit
) -> list[Problem]:
    problems = [p for c in source.columns for p in _column_problems(c, strings[c.name], typed[c.name], limit)]
    problems.append(_duplicates(source, typed))
    return problems


def _reasons(problems: list[Problem], rows: np.ndarray) -> pa.Array:
    """"; "-joined reasons of the given rows, in contract column order."""
    parts = [pc.if_else(pa.array(mask[rows]), reason, pa.scalar(None, pa.string())) for mask, reason in problems]
    return pc.binary_join_element_wise(*parts, "; ", null_handling="skip")


def _split(
    strings: dict[str, pd.Series], typed: dict[str, pd.Series], raw: _Raw, problems: list[Problem]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    bad = np.logical_or.reduce([mask for mask, _ in problems])
    good_rows, bad_rows = np.flatnonzero(~bad), np.flatnonzero(bad)
    rows = pd.DataFrame({name: s.iloc[good_rows].reset_index(drop=True) for name, s in typed.items()})
    rows["_line"] = raw.lines[good_rows]
    quarantine = pd.DataFrame({name: s.iloc[bad_rows].reset_index(drop=True) for name, s in strings.items()})
    quarantine["_line"] = raw.lines[bad_rows]
    quarantine["reason"] = pd.Series(_reasons(problems, bad_rows), dtype="str")
    if raw.malformed:
        width = len(raw.header)
        malformed = pd.DataFrame({
            "_line": [line for line, _ in raw.malformed],
            "reason": [f"malformed row: {len(fields)} field{'s' * (len(fields) != 1)}, expected {width}"
                       for _, fields in raw.malformed],
        })
        quarantine = pd.concat([quarantine, malformed], ignore_index=True)
        quarantine = quarantine.sort_values("_line", kind="stable", ignore_index=True)
        quarantine = quarantine.astype({name: "str" for name in [*strings, "reason"]})
    return rows, quarantine
