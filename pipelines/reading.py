"""One delivered file -> a typed canonical table plus quarantined rows, or a refusal.

A file is refused whole (ContractError) when it cannot be trusted at all: undecodable bytes, a
missing required column, a column named twice, or any trace of an individual number (個人番号),
which 番号法 Art. 29 forbids us to hold. Everything wrong with a single row is quarantined with
a reason instead, so one bad row never costs a month.

Error messages name the file, line and column but never a cell value: they end up in logs and
audit records outside the custodian's zone.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.messages import delivered_twice, repeated_column
from contract.sources import Column, Source
from contract.months import check_month, month_end
from pipelines.decoding import (
    ContractError,
    header_key,
    header_lookup,
    physical_lines,
    RawTable,
    read_csv_raw,
    read_parquet_raw,
    column_label,
    squashed,
    swallowed,
    to_utf8,
)
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

# Header words that announce an individual number, compared after squashed().
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


# ------------------------------------------------------------------------------ public API


def delivery_file(month_dir: Path, source: str) -> Path | None:
    """The file delivering `source` in a month folder, or None; two candidates are refused."""
    found = [month_dir / f"{source}{suffix}" for suffix in SUFFIXES]
    found = [path for path in found if path.is_file()]
    if len(found) > 1:
        names = ", ".join(path.name for path in found)
        raise ContractError(delivered_twice(month_dir, source, names))
    return found[0] if found else None


def read_source(path: Path, source: Source, delivery_month: str | None = None) -> SourceRead:
    """Read one delivered file of `source` against the contract.

    With `delivery_month` ("YYYY-MM"), observation dates after that month's end are
    quarantined; without it, those after today are.
    """
    path = Path(path)
    raw = read_parquet_raw(path, source) if path.name.endswith(".parquet") else read_csv_raw(path)
    _refuse_my_numbers(path, raw)
    positions, unknown = _match_header(path, raw.header, source, raw.header_line)
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


def _refuse_swallowed_lines(path: Path, raw: RawTable, problems: list[Problem]) -> None:
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
            raise swallowed(path, int(raw.lines[i]), int(raw.ends[i]), reason)


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
    data, _ = to_utf8(path, data)
    physical = physical_lines(data)
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


# ------------------------------------------------------------------ 個人番号 and the header


def _refusal(path: Path, line: int, i: int, name: str, verb: str = "holds") -> ContractError:
    return ContractError(f"{path} {line}行目、{column_label(i, name)}：個人番号{'を示す見出しがある' if verb == 'names' else 'が含まれる'}ため、"
                         "ファイル全体を受け付けず、保存もしません（番号法第29条）。個人番号を除いた抽出を提供し直してもらってください / "
                         f"{path} line {line}, {column_label(i, name)}: {verb} an individual number (個人番号); "
                         "the whole file is refused and must not be stored (番号法 Art. 29); ask for the extract "
                         "again without it")


def _refuse_my_numbers(path: Path, raw: RawTable) -> None:
    """Refuse the file if a header names an individual number or any cell holds one."""
    for i, name in enumerate(raw.header):
        if any(word in squashed(name) for word in _MY_NUMBER_HEADERS):
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


def _match_header(path: Path, header: list[str], source: Source,
                  header_line: int = 1) -> tuple[dict[str, int], list[str]]:
    """Canonical column -> position in the file, and the header names the contract does not know."""
    lookup = header_lookup(source)
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for i, name in enumerate(header):
        canonical = lookup.get(header_key(name))
        if canonical is None:
            unknown.append(name.strip() or f"(unnamed column {i + 1})")
        elif canonical in positions:
            first = header[positions[canonical]].strip()
            raise ContractError(repeated_column(path, header_line, canonical, first, name.strip()))
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
        hint_ja = "（既知の見出しが一つもない：見出し行がないか、カンマ区切りでない可能性）" if not positions else ""
        raise ContractError(f"{path}：必須の列がありません：{names}{hint_ja}。見出し行を確かめ、列をそろえて提供し直してもらってください / "
                            f"{path}: missing required column(s) {names}{hint}; ask for the extract again with them")
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
    strings: dict[str, pd.Series], typed: dict[str, pd.Series], raw: RawTable, problems: list[Problem]
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
