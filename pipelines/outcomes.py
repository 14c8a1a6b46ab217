"""Returned visiting sheets -> next month's outreach_outcomes delivery (custody zone).

A coordinator hands out `outreach.xlsx` (reports/sheets.py); visitors fill in 訪問日,
訪問結果 and, if they like, 特記事項 (a free note) and return it. `import_outcomes` reads every district sheet, checks each filled-in row
against the contract and against the month's list, and writes (or merges into)
`<inbox>/<month+1>/outreach_outcomes.csv` with the contract's canonical columns, so the next
run ingests the outcomes like any delivery and they become labels (the note is an identifier
column: it stays in the delivery, in the custody zone). A row is matched by its 宛名番号, or by
区全体順位 (the ward-wide rank) on a sheet without one; sheets made before district order
existed carry the ward rank as 順位. Anything wrong stops the import with the sheet's name and
row number, and nothing is written; a row with a 訪問日 or a note but no 訪問結果 is refused, not
skipped. Messages never quote an identifier.
"""
from __future__ import annotations

import datetime as dt
import gzip
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pipelines import audit
from pipelines.catalog import runs
from pipelines.config import Config
from contract.messages import no_run
from contract.sources import OUTCOME, SOURCES
from contract.storage import file_sha256
from contract.months import check_month, month_end, shift
from pipelines.parsing import parse_date
from pipelines.pseudonymise import load_key, pseudonym, pseudonymise
from pipelines.reading import delivery_file, read_source
from contract.storage import atomic_path, read_parquet

ID_HEADER, RANK_HEADER, DATE_HEADER, OUTCOME_HEADER = "宛名番号", "区全体順位", "訪問日", "訪問結果"
NOTE_HEADER, OLD_RANK_HEADER = "特記事項", "順位"   # 順位 was the ward rank before sheets had 区全体順位
COLUMNS = ["resident_id", "visit_date", "outcome", "note"]
ALLOWED_JA = "・".join(dict.fromkeys(k for k, v in OUTCOME.items() if k != v))
MAX_LISTED_PROBLEMS = 30


class OutcomesRejected(ValueError):
    """The returned sheet cannot be imported; the message lists every problem by sheet and row."""


@dataclass(frozen=True)
class OutcomeRow:
    """One visit outcome of a listed person, checked against the list it came from."""
    where: str                 # where it was written (a sheet's row, an app record), for messages
    pid: str
    resident_id: str | None    # None when the source named the person by rank (looked up on merge)
    visit_date: dt.date
    outcome: str               # the contract's canonical value (contract.sources.OUTCOME)
    note: str = ""             # 特記事項: an identifier, kept in the inbox file, never in the lake


def _outcome(value) -> str | None:
    if value is None:
        return None
    key = unicodedata.normalize("NFKC", str(value)).strip()
    if not key:
        return None
    lookup = {unicodedata.normalize("NFKC", k).casefold(): v for k, v in OUTCOME.items()}
    return lookup.get(key.casefold(), "")


def _date(value) -> dt.date | None:
    """A date cell: a real date, an Excel serial number, or text in any contract form (和暦 too)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 20000 < value < 80000:   # an Excel serial day number (1954 … 2119)
            from openpyxl.utils.datetime import from_excel

            return from_excel(value).date()
        return parse_date(str(int(value))) if float(value).is_integer() else None
    if isinstance(value, str):
        return parse_date(value)
    return None


def _resident_id(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


def _text(value) -> str:
    """A cell as stripped text ('' when empty)."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value).strip()


def _no_outcome(sheet: str, row: int, filled: str) -> str:
    """Why a row with a 訪問日 (or a note) and no 訪問結果 is refused, and what to do, in Japanese and English."""
    what = {"訪問日": ("訪問日", "a 訪問日 (visit date)"), "特記事項": ("特記事項", "a 特記事項 (note)")}[filled]
    return (f"シート「{sheet}」{row}行目: {what[0]}があるのに訪問結果が空欄です。訪問結果を一覧（{ALLOWED_JA}）から選ぶか、"
            f"訪問していなければ{what[0]}を消して、もう一度取り込んでください / sheet 「{sheet}」 row {row}: "
            f"{what[1]} but no 訪問結果 (outcome): choose one from the list, or clear the {what[1].split()[0]} "
            "if the visit did not happen, then import again")


def _header_row(sheet) -> tuple[int, dict[str, int]] | None:
    """(row number, header -> column index) of the first row among the top five naming 訪問結果."""
    for r, row in enumerate(sheet.iter_rows(min_row=1, max_row=5, values_only=True), start=1):
        names = {unicodedata.normalize("NFKC", str(v)).strip(): i for i, v in enumerate(row) if v is not None}
        if OUTCOME_HEADER in names:
            return r, names
    return None


def _listed(cfg: Config, month: str) -> pd.DataFrame:
    path = runs.list_file(cfg, month)
    if not path.exists():
        raise OutcomesRejected(no_run(month, f"（リスト {path} がない。結果は、シートの元になったリストに対して取り込みます）",
                                      f" (no list {path}; outcomes are imported against the list the sheet was made from)"))
    return read_parquet(path, columns=["pid", "rank"])


def residents_by_pid(cfg: Config, months: list[str], key: bytes) -> dict[str, str]:
    """pid -> 宛名番号 over the identified residents extracts of some months (custody zone)."""
    out: dict[str, str] = {}
    for month in months:
        path = delivery_file(runs.inbox_dir(cfg, month), "residents")
        if path is None:
            continue
        ids = read_source(path, SOURCES["residents"]).rows["resident_id"].astype("str")
        ids = ids.str.normalize("NFKC").str.strip()
        out.update(zip(pseudonymise(ids, key, "resident"), ids))
    return out


def read_returned_sheet(cfg: Config, xlsx_path: Path, month: str) -> list[OutcomeRow]:
    """Every filled-in row of every district sheet, checked; raises OutcomesRejected listing all problems."""
    from openpyxl import load_workbook

    key = load_key(cfg.key_file)
    listed = _listed(cfg, month)
    on_list = set(listed["pid"])
    by_rank = dict(zip(listed["rank"].astype(int), listed["pid"]))
    book = load_workbook(xlsx_path, data_only=True, read_only=True)
    problems: list[str] = []
    rows: list[OutcomeRow] = []
    first_day = month_end(month).normalize().replace(day=1).date()
    sheets_read = 0
    for sheet in book.worksheets:
        found = _header_row(sheet)
        if found is None:
            continue   # the overview sheet 「全体」 has no entry columns
        header_row, names = found
        rank_header = RANK_HEADER if RANK_HEADER in names else OLD_RANK_HEADER
        if DATE_HEADER not in names or (ID_HEADER not in names and rank_header not in names):
            problems.append(f"sheet 「{sheet.title}」: has {OUTCOME_HEADER} but no {DATE_HEADER} column or no "
                            f"{ID_HEADER}/{RANK_HEADER} column to say whom a row is about")
            continue
        sheets_read += 1
        for r, values in enumerate(sheet.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1):
            cell = lambda h: values[names[h]] if h in names and names[h] < len(values) else None  # noqa: E731
            outcome = _outcome(cell(OUTCOME_HEADER))
            raw_date = cell(DATE_HEADER)
            note = _text(cell(NOTE_HEADER))
            where = f"sheet 「{sheet.title}」 row {r}"
            if outcome is None:
                if _text(raw_date) or note:
                    problems.append(_no_outcome(sheet.title, r, "訪問日" if _text(raw_date) else "特記事項"))
                continue   # not visited yet: nothing to import
            if outcome == "":
                problems.append(f"{where}: unknown {OUTCOME_HEADER} (allowed: {ALLOWED_JA})")
                continue
            visit = _date(raw_date)
            if visit is None:
                problems.append(f"{where}: {DATE_HEADER} is " + ("missing" if raw_date in (None, "") else
                                "not a date (use 2026/11/05 or 令和8年11月5日)"))
                continue
            resident_id = _resident_id(cell(ID_HEADER))
            if resident_id is not None:
                pid = pseudonym(key, "resident", resident_id)
                if pid not in on_list:
                    problems.append(f"{where}: the {ID_HEADER} is not on the {month} list")
                    continue
            else:
                rank = cell(rank_header)
                try:
                    pid = by_rank[int(rank)]
                except (TypeError, ValueError, KeyError):
                    problems.append(f"{where}: neither a {ID_HEADER} nor a {rank_header} of the {month} list")
                    continue
            rows.append(OutcomeRow(where, pid, resident_id, visit, outcome, note))
    if sheets_read == 0 and not problems:
        problems.append(f"no sheet has the columns {ID_HEADER} (or {RANK_HEADER}), {DATE_HEADER} and {OUTCOME_HEADER}")
    seen: dict[tuple[str, dt.date], OutcomeRow] = {}
    for row in rows:
        if row.visit_date < first_day:
            problems.append(f"{row.where}: {DATE_HEADER} is before the list month {month}")
        earlier = seen.setdefault((row.pid, row.visit_date), row)
        if earlier is not row and earlier.outcome != row.outcome:
            problems.append(f"{row.where}: a different {OUTCOME_HEADER} for the same person and day than "
                            f"{earlier.where}")
    if problems:
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise OutcomesRejected(f"{Path(xlsx_path).name}: {len(problems)} problem(s); nothing was imported:\n  "
                               + "\n  ".join(shown) + (f"\n  … and {more} more" if more else ""))
    return list(seen.values())


def _existing(path: Path | None, into: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed rows as canonical strings, quarantined raw rows) of an outcomes file already delivered."""
    empty = pd.DataFrame({c: pd.Series(dtype="str") for c in COLUMNS})
    if path is None:
        return empty, empty
    read = read_source(path, SOURCES["outreach_outcomes"], delivery_month=into)
    rows = read.rows
    good = pd.DataFrame({"resident_id": rows["resident_id"].astype("str"),
                         "visit_date": rows["visit_date"].dt.strftime("%Y-%m-%d"),
                         "outcome": rows["outcome"].astype("str"),
                         "note": rows["note"].fillna("").astype("str") if "note" in rows else ""})
    # Rows the contract would quarantine are kept verbatim, so ingest still reports them.
    bad = (read.quarantine.reindex(columns=COLUMNS).fillna("").astype("str") if len(read.quarantine) else empty)
    return good, bad


def _write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        if path.name.endswith(".parquet"):
            frame.astype("str").to_parquet(tmp, index=False)
        elif path.name.endswith(".gz"):
            with gzip.open(tmp, "wt", encoding="utf-8", newline="") as handle:
                frame.to_csv(handle, index=False)
        else:
            frame.to_csv(tmp, index=False, encoding="utf-8")


def import_outcomes(cfg: Config, xlsx_path: Path, month: str, into: str | None = None) -> Path:
    """Turn a returned sheet of `month`'s list into the `into` delivery's outreach_outcomes (default:
    the next month), merged with any outcomes already delivered there (the sheet wins per person
    and visit day). Returns the written file. Raises OutcomesRejected, writing nothing."""
    check_month(month)
    into = check_month(into or shift(month, 1))
    if into <= month:
        raise OutcomesRejected(f"outcomes of the {month} list go into a later delivery month, not {into}")
    rows = read_returned_sheet(cfg, Path(xlsx_path), month)
    return merge_outcomes(cfg, month, into, rows, Path(xlsx_path).name, "outcomes_import",
                          sheet_sha256=file_sha256(Path(xlsx_path)))


def merge_outcomes(cfg: Config, month: str, into: str, rows: list[OutcomeRow], origin: str, event: str,
                   **logged) -> Path:
    """Merge checked outcome rows of `month`'s list into the `into` delivery's outreach_outcomes
    (the new rows win per person and visit day), write it atomically and log `event` with
    `logged`; `origin` names the source in messages. Returns the written file. Raises
    OutcomesRejected, writing nothing. The returned-sheet import and the web app both end here."""
    last_day = month_end(into).date()
    late = [r for r in rows if r.visit_date > last_day]
    if late:
        raise OutcomesRejected(f"{origin}: {len(late)} visit(s) dated after the end of the {into} "
                               f"delivery, e.g. {late[0].where}; nothing was imported. Import them into a later "
                               "month (into=…) once that month's delivery is prepared")
    missing_ids = [r for r in rows if r.resident_id is None]
    if missing_ids:
        key = load_key(cfg.key_file)
        ids = residents_by_pid(cfg, [month, into], key)
        unknown = [r for r in missing_ids if r.pid not in ids]
        if unknown:
            raise OutcomesRejected(f"{origin}: {unknown[0].where}: the listed person is not in the "
                                   f"{month} residents extract; nothing was imported")
        rows = [r if r.resident_id else replace(r, resident_id=ids[r.pid]) for r in rows]
    new = pd.DataFrame({"resident_id": [r.resident_id for r in rows],
                        "visit_date": [r.visit_date.isoformat() for r in rows],
                        "outcome": [r.outcome for r in rows], "note": [r.note for r in rows]}, columns=COLUMNS)

    month_dir = runs.inbox_dir(cfg, into)
    current = delivery_file(month_dir, "outreach_outcomes") if month_dir.is_dir() else None
    good, bad = _existing(current, into)
    merged = pd.concat([good, new], ignore_index=True)
    merged = merged.drop_duplicates(["resident_id", "visit_date"], keep="last")
    merged = merged.sort_values(["visit_date", "resident_id"], kind="stable")
    merged = pd.concat([merged, bad], ignore_index=True)
    target = current or month_dir / "outreach_outcomes.csv"
    _write(merged, target)
    audit.append(cfg.audit_log, event, month=month, into=into, **logged,
                 rows=len(new), replaced=int(len(good) + len(new) - (len(merged) - len(bad))),
                 outcomes={k: int(v) for k, v in new["outcome"].value_counts().sort_index().items()},
                 file=target.name, file_sha256=file_sha256(target))
    return target
