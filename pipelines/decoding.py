"""Delivered bytes -> raw string columns (RawTable): encoding detection and decoding, CSV parsing
(fast Arrow path and exact path), Parquet strings. No contract is applied here (pipelines/reading.py
does), and error messages name the file and line, never a cell value."""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contract.messages import empty_file, unreadable_csv, unreadable_file, untyped_column
from contract.sources import Source



class ContractError(Exception):
    """The whole file is refused. The message names the file and the line or column, and NEVER contains a data value."""


@dataclass
class RawTable:
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


def never_closes(path: Path, line: int) -> ContractError:
    return ContractError(
        f"{path} {line}行目：引用符（\"）がここで開いたまま閉じていないため、ファイル全体を受け付けませんでした。"
        "引用符を閉じるか取り除いて、提供し直してもらってください / "
        f"{path} line {line}: a quote (\") opens a field here and never closes; every line after it would be "
        "swallowed into that field, so the file is refused. Close or remove the quote and deliver the file again")


def read_csv_raw(path: Path) -> RawTable:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise ContractError(unreadable_file(path, "gzip")) from None
    data, encoding = to_utf8(path, data)
    if not data or data.isspace():  # isspace stops at the first other byte; strip would copy
        raise ContractError(empty_file(path))
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


def to_utf8(path: Path, data: bytes) -> tuple[bytes, str]:
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
    raise ContractError(f"{path} {line}行目：UTF-8 でも CP932 でもない文字コードのため、ファイルを受け付けませんでした。"
                        "UTF-8 か CP932（Shift_JIS）で書き出し直してもらってください / "
                        f"{path} line {line}: bytes that are neither UTF-8 nor CP932; ask for the file again, "
                        "exported as UTF-8 or CP932 (Shift_JIS)")


def physical_lines(data: bytes) -> int:
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


def _parse_csv_fast(data: bytes, encoding: str) -> RawTable | None:
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
    physical = physical_lines(data)
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
    return RawTable(header, [body.column(i) for i in range(body.num_columns)], lines, encoding,
                physical=physical, header_lines=1, blank=0, ends=lines)


def _parse_csv_exact(path: Path, data: bytes, encoding: str) -> RawTable:
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
                        raise never_closes(path, line)
                    raise swallowed(path, line, previous, f"{len(fields)} fields, expected {len(header)}")
                malformed.append((line, fields))
            else:
                rows.append(fields)
                lines.append(line)
                ends.append(previous)
    except csv.Error as error:
        raise ContractError(unreadable_csv(path, previous + 1, "field larger" in str(error))) from None
    if record and _ends_in_open_quote(record):
        raise never_closes(path, previous - physical_lines(record.encode()) + 1)
    if header is None:
        raise ContractError(empty_file(path))
    columns = [pa.chunked_array([pa.array([r[i] for r in rows], pa.large_string())]) for i in range(len(header))]
    return RawTable(header, columns, np.array(lines, dtype=np.int64), encoding, header_line, malformed,
                physical=physical_lines(data), header_lines=header_lines, blank=blank,
                ends=np.array(ends, dtype=np.int64))


def read_parquet_raw(path: Path, source: Source) -> RawTable:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError):
        raise ContractError(unreadable_file(path, "Parquet")) from None
    lookup = header_lookup(source)
    months = {c.name for c in source.columns if c.type == "month"}
    columns = [
        _parquet_strings(path, i, name, table.column(i), month=lookup.get(header_key(name)) in months)
        for i, name in enumerate(table.column_names)
    ]
    # Parquet has rows, not lines: the accounting counts rows (the "line" of a row is its
    # position + 1, as if a header line came first, so messages read the same as for a CSV).
    return RawTable(list(table.column_names), columns, np.arange(2, table.num_rows + 2, dtype=np.int64), "parquet",
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
        raise ContractError(untyped_column(path, column_label(i, name), str(column.type))) from None



def swallowed(path: Path, start: int, end: int, what: str) -> ContractError:
    return ContractError(
        f"{path} {start}行目：引用符で始まる項目が{end}行目まで続き、契約に合わない行になるため、ファイルを受け付けませんでした。"
        "引用符の抜けか余分を直して、提供し直してもらってください / "
        f"{path} line {start}: a quoted field opens here and runs to line {end}, and the record it makes "
        f"fails the contract ({what}); a quote (\") is probably missing or stray. The file is refused "
        "because the lines it swallowed cannot be told from the quoted text; fix the quote and deliver it again")


def squashed(name: str) -> str:
    return re.sub(r"[\s_\-・.]", "", unicodedata.normalize("NFKC", name)).casefold()


def header_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().strip("\ufeff").casefold()


def header_lookup(source: Source) -> dict[str, str]:
    """Normalised canonical names and aliases -> canonical name."""
    return {header_key(n): c.name for c in source.columns for n in (c.name, *c.aliases)}



def column_label(i: int, name: str) -> str:
    """A column for an error message. A header with a long digit run may be a data value (a
    file without a header row), so it is named by position only."""
    if re.search(r"\d{4}", unicodedata.normalize("NFKC", name)) or len(name) > 40:
        return f"column {i + 1}"
    return f"column {i + 1} ({name.strip()!r})"
