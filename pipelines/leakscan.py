"""Leak guard: search places outside the custody zone for identifiers found in the inbox.

The needles are every 宛名番号, 世帯番号, name, kana name, address, phone and birth date in the
inbox's residents extracts. Parquet files are read column by column (their bytes are
compressed, so a byte search would see nothing); zip containers (xlsx, skops models) are
opened; every other file is searched as text. Hits name the file and the kind of identifier,
never the value.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract import sources
from contract.sources import SOURCES
from contract.months import month_end
from pipelines import parsing, reading
from pipelines.reading import SourceRead, delivery_file, read_source
from contract.storage import atomic_path, file_sha256

_TOKENS = [
    re.compile(r"\d{6,}"),                                           # IDs
    re.compile(r"\d{2,4}-\d{2,4}-\d{3,4}"),                          # phones
    re.compile(r"\d{4}-\d{2}-\d{2}"),                                # ISO dates
    re.compile(r"[\u3005\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]+[ \u3000]?[\u3005\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]+"),  # names
    re.compile(r"東京都[^\s\",;<>|\]\}]+"),                          # addresses
]


@dataclass(frozen=True)
class Hit:
    path: Path
    kind: str

    def __str__(self) -> str:
        return f"{self.path}: a {self.kind} from the inbox"


_SPACES = re.compile(r"[ \u3000]")


def _squash(text: str) -> str:
    return _SPACES.sub("", text)


_ID_COLUMNS = [("resident_id", "宛名番号"), ("household_id", "世帯番号"), ("phone", "phone"),
               ("name", "name"), ("name_kana", "kana name"), ("address", "address")]
BIRTH = "birth date"
Groups = list[tuple[str, list[str]]]  # (kind, distinct values in order of first occurrence)


QUARANTINED = "identifier of a malformed residents row"
_NOT_AN_IDENTIFIER = re.compile(r"\d{1,9}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")   # codes, counts, dates


def _malformed_fields(read: SourceRead, held: pd.DataFrame, ordinary: set[str]) -> list[str]:
    """Fields of rows too malformed to split into columns (a wrong field count): any of them may
    be a name or an address, so each that could identify someone is a needle."""
    from pipelines.reading import record_texts   # only when a delivery had such rows

    ids = [c for c, _ in _ID_COLUMNS if c in held.columns]
    malformed = held[held[ids].isna().all(axis=1)] if ids else held
    if not len(malformed):
        return []
    fields: dict[str, None] = {}
    for text in record_texts(read.path, malformed["_line"].astype(int).tolist()):
        for field in (text or "").split(","):
            field = _squash(field.strip().strip('"'))
            if len(field) >= 3 and field not in ordinary and not _NOT_AN_IDENTIFIER.fullmatch(field):
                fields[field] = None
    return list(fields)


def needle_groups(read: SourceRead) -> tuple[Groups, bool]:
    """Needle groups of one residents extract as read, and whether a row was refused as "in the
    future" (rows read without a delivery month: today's date decided them, see _NeedleCache)."""
    rows = read.rows
    # A quarantined row's person is as identifiable as an accepted one's: search for its raw
    # identifiers too (they are kept in custody, and must appear nowhere in the work zone).
    held = read.quarantine if len(read.quarantine) else None
    # ...except what a shifted row carried over from a column that names no one (a district
    # name landing under `address` would otherwise flag every report that names districts).
    ordinary = ({str(v) for c in ("district", "relationship", "sex") if c in rows.columns
                 for v in rows[c].dropna().unique()} if held is not None else set())
    groups: Groups = []
    for column, kind in _ID_COLUMNS:
        values = rows[column].dropna().astype("str")
        if held is not None and column in held.columns:
            # Raw cells of a malformed row may hold a shifted fragment ("1", "男"): only values
            # long enough to identify someone are searched, so a short code cannot raise alarms.
            raw = held[column].dropna().astype("str").str.strip()
            values = pd.concat([values, raw[(raw.str.len() >= 3) & ~raw.isin(ordinary)]], ignore_index=True)
        # Distinct first, then squashed: same values in the same first-occurrence order as
        # squashing every row, at a fraction of the cost.
        distinct = pc.unique(pa.array(values.array))
        # Arrow's literal replace: the same strings as _squash, without a Python call per value
        squashed = pc.replace_substring(pc.replace_substring(distinct, " ", ""), "\u3000", "")
        groups.append((kind, list(dict.fromkeys(squashed.to_pylist()))))
    if held is not None:
        groups.append((QUARANTINED, _malformed_fields(read, held, ordinary)))
    births = rows["birth_date"].dropna().dt.strftime("%Y-%m-%d").unique()
    groups.append((BIRTH, [str(b) for b in births]))
    future = bool(len(read.quarantine)) and bool(read.quarantine["reason"].str.contains(": in the future").any())
    return groups, future


def _extract(path: Path) -> tuple[Groups, bool]:
    return needle_groups(read_source(path, SOURCES["residents"]))


def needles_wanted(cache_dir: Path, path: Path) -> bool:
    """Whether ingest should give the needles of this residents extract (its cache has none)."""
    return not _NeedleCache(cache_dir).valid(file_sha256(path))


def needles_to_keep(read: SourceRead, month: str) -> Groups | None:
    """Ingest has just read this residents extract: its needles, so the leak guard at the end of
    the run need not read it again (at a million residents that re-read cost ≈ 18 s an
    extract, 7 minutes for a backfill of 24); None when they cannot be kept.

    Ingest reads with the delivery month, the guard without one. The two reads accept the same
    rows when no row was refused for a date after the delivery month's end and that end has
    passed: then no date lies after today either. Otherwise nothing is kept and the guard
    reads the file itself.
    """
    if month_end(month) > pd.Timestamp.today().normalize():
        return None
    if len(read.quarantine) and read.quarantine["reason"].str.contains(": after delivery month end").any():
        return None
    return needle_groups(read)[0]


def put_needles(cache_dir: Path, sha256: str, groups: Groups) -> None:
    """Keep an extract's needles (needles_to_keep) in the custody zone's cache."""
    _NeedleCache(cache_dir).put(sha256, groups, future=False)


def _code_digest() -> str:
    """Digest of the code that turns an extract into needles: a change to it voids the cache."""
    digest = hashlib.sha256()
    for module in (sources, parsing, reading):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


class _NeedleCache:
    """Needles kept in the custodian zone, so unchanged extracts are not read again.

    - `<sha256>.parquet`: the needle groups of one residents extract, named by its SHA-256;
    - `inbox-<digest>.parquet`: the merged needles of the inbox's extracts up to some month,
      named by a digest of (month, SHA-256) of each, so a scan after a new delivery starts from
      the previous scan's needles and reads only the new extract.
    The files hold identifiers (that is what needles are), so they live beside the key, never in
    the work dir, with mode 0600. Reading an extract depends on today's date only through rows
    refused as "in the future"; needles made from no such row hold on any later day, others
    only on the day they were made.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.code = _code_digest()
        self.today = pd.Timestamp.today().strftime("%Y-%m-%d")

    def groups(self, path: Path) -> tuple[Groups, bool]:
        """(needle groups of one extract, whether today's date decided some of them)."""
        sha256 = file_sha256(path)
        cached = self._read(self.folder / f"{sha256}.parquet")
        if cached is not None:
            kinds, values, future = cached
            by_kind: dict[str, list[str]] = {}
            for kind, value in zip(kinds, values):
                by_kind.setdefault(kind, []).append(value)
            return list(by_kind.items()), future
        groups, future = _extract(path)
        self.put(sha256, groups, future)
        return groups, future

    def valid(self, sha256: str) -> bool:
        return self._read(self.folder / f"{sha256}.parquet", columns=[]) is not None

    def put(self, sha256: str, groups: Groups, future: bool) -> None:
        self._write(self.folder / f"{sha256}.parquet", [kind for kind, group in groups for _ in group],
                    [value for _, group in groups for value in group], future)

    def state_file(self, entries: list[tuple[str, str]], first_delivery: str) -> Path:
        body = json.dumps([self.code, first_delivery, entries])
        return self.folder / f"inbox-{hashlib.sha256(body.encode()).hexdigest()[:32]}.parquet"

    def state(self, target: Path) -> tuple[dict[str, str], bool] | None:
        """Merged needles (value -> kind, in insertion order) and their future flag, if valid."""
        cached = self._read(target)
        return None if cached is None else (dict(zip(cached[1], cached[0])), cached[2])

    def keep_state(self, target: Path, needles: dict[str, str], future: bool) -> None:
        """Write the merged needles; earlier merged states are removed (they are superseded)."""
        self._write(target, list(needles.values()), list(needles), future)
        for old in self.folder.glob("inbox-*.parquet"):
            if old != target:
                old.unlink()

    def forget_except(self, kept: set[str]) -> None:
        """Delete the needles of extracts no longer in the inbox: identifiers are kept no longer
        than the extract they came from."""
        for path in self.folder.glob("*.parquet") if self.folder.is_dir() else []:
            if not path.name.startswith("inbox-") and path.stem not in kept:
                path.unlink()

    def _read(self, target: Path, columns: list[str] | None = None) -> tuple[list[str], list[str], bool] | None:
        if not target.exists():
            return None
        table = pq.read_table(target, columns=columns)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        day, future = meta.get("day", "~"), meta.get("future") != "0"
        if meta.get("code") != self.code or not (day == self.today or (not future and self.today >= day)):
            return None
        if columns is not None:   # only the metadata was asked for
            return [], [], future
        return table.column("kind").to_pylist(), table.column("value").to_pylist(), future

    def _write(self, target: Path, kinds: list[str], values: list[str], future: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        table = pa.table({"kind": pa.array(kinds, pa.string()), "value": pa.array(values, pa.string())})
        table = table.replace_schema_metadata({"code": self.code, "day": self.today, "future": "1" if future else "0"})
        with atomic_path(target) as tmp:  # mkstemp creates the file with mode 0600
            pq.write_table(table, tmp, compression="zstd")


def _merge(needles: dict[str, str], groups: Groups, first_delivery: str) -> None:
    for kind, values in groups:
        if kind == BIRTH:
            # A birth date inside the delivery period is indistinguishable from an event date.
            needles.update({b: kind for b in values if b < first_delivery})
        else:
            needles.update(dict.fromkeys(values, kind))


def inbox_identifiers(inbox: Path, cache_dir: Path | None = None) -> dict[str, str]:
    """needle -> kind, from every month's residents extract.

    `cache_dir` (in the custodian zone, e.g. <custody>/leakscan) keeps needles between scans
    (see _NeedleCache): an unchanged extract is not read again.
    """
    months = sorted(p for p in inbox.iterdir() if p.is_dir()) if inbox.is_dir() else []
    first_delivery = months[0].name + "-01" if months else "9999-12-31"
    extracts = [(m.name, path) for m in months if (path := delivery_file(m, "residents")) is not None]
    needles: dict[str, str] = {}
    if cache_dir is None:
        for _, path in extracts:
            _merge(needles, _extract(path)[0], first_delivery)
        return needles
    cache = _NeedleCache(cache_dir)
    entries = [(name, file_sha256(path)) for name, path in extracts]
    start, future = 0, False
    for k in range(len(entries), 0, -1):  # the longest prefix of the inbox already merged
        found = cache.state(cache.state_file(entries[:k], first_delivery))
        if found is not None:
            (needles, future), start = found, k
            break
    for _, path in extracts[start:]:
        groups, late = cache.groups(path)
        _merge(needles, groups, first_delivery)
        future = future or late
    if start < len(entries):
        cache.keep_state(cache.state_file(entries, first_delivery), needles, future)
    cache.forget_except({sha for _, sha in entries})
    return needles


PSEUDONYM = r"^[0-9a-f]{32}$"


@dataclass(frozen=True)
class Needles:
    """Derived once per scan from the inbox identifiers."""
    values: dict[str, str]          # squashed value -> kind
    births: frozenset[str]          # YYYY-MM-DD
    numeric_ids: dict[str, str]     # ID without leading zeros -> kind

    @classmethod
    def of(cls, values: dict[str, str]) -> "Needles":
        return cls(values, frozenset(k for k, v in values.items() if v == "birth date"),
                   {k.lstrip("0"): v for k, v in values.items() if v in ("宛名番号", "世帯番号")})


def _date_column_leaks(column: pa.ChunkedArray, births: frozenset[str]) -> bool:
    """A date column leaks birth dates when its distinct days are birth dates clearly more often
    than chance.

    Lake tables legitimately hold dates (validity periods, events), and some coincide with
    somebody's birthday; a copied birth-date column matches nearly everywhere. In a large ward
    birth dates cover most calendar days (86 % at 100,000 residents), so "most days match" is
    not enough: the share must exceed the birth dates' own density over the column's date range
    by more than half the remaining gap. Where birth dates cover every day, a date alone
    identifies nobody and is not flagged.
    """
    days = sorted(set(pc.strftime(pc.unique(column), format="%Y-%m-%d").drop_null().to_pylist()))
    if not days:
        return False
    share = len(set(days) & births) / len(days)
    span = (pd.Timestamp(days[-1]) - pd.Timestamp(days[0])).days + 1
    density = sum(1 for b in births if days[0] <= b <= days[-1]) / span
    return share >= 0.5 and share > density + (1 - density) / 2


def _texts_of(path: Path, needles: Needles) -> tuple[list[str], set[str]]:
    """(texts to search, kinds already found) for one file."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        texts: list[str] = []
        kinds: set[str] = set()
        for column in table.columns:
            while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                column = pc.list_flatten(column)
            if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
                if _date_column_leaks(column, needles.births):
                    kinds.add("birth date")
            elif pa.types.is_integer(column.type):
                # An ID stored as a number lost its leading zeros; compare it that way.
                numbers = {str(v) for v in pc.unique(column).drop_null().to_pylist()}
                kinds |= {needles.numeric_ids[n] for n in numbers if n in needles.numeric_ids}
            elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                values = pc.unique(column).drop_null()
                # Keyed pseudonyms are what the lake is made of; they cannot hold a name.
                values = values.filter(pc.invert(pc.match_substring_regex(values, PSEUDONYM)))
                texts.extend(values.to_pylist())
        return texts, kinds
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name).decode("utf-8", "ignore") for name in archive.namelist()], set()
    return [path.read_bytes().decode("utf-8", "ignore")], set()


def scan_texts(texts: list[str], needles: dict[str, str]) -> set[str]:
    """Kinds of identifier found in some texts: whole values, and tokens inside longer text."""
    kinds = {needles[v] for v in {_squash(t) for t in texts} if v in needles}
    joined = "\n".join(texts)
    for pattern in _TOKENS:
        for token in set(pattern.findall(joined)):
            token = _squash(token)
            if token in needles:
                kinds.add(needles[token])
    return kinds


def scan(inbox: Path, roots: list[Path], cache_dir: Path | None = None, changed_only: bool = False) -> list[Hit]:
    """Identifier hits under `roots`; `cache_dir` (custodian zone only) keeps needles between scans.

    `changed_only` (the guard at the end of `mimamori run`) skips files found clean by an earlier
    scan and unchanged since (same size and mtime): a file written before this month's extract
    arrived could only hold identifiers of inputs it was already checked against, and re-reading
    the whole lake every month would make the guard grow with the ward's history. The auditor's
    `mimamori scan-pii` reads everything.
    """
    needles = Needles.of(inbox_identifiers(inbox, cache_dir))
    seen_file = cache_dir / "clean_files.json" if cache_dir is not None else None
    seen = json.loads(seen_file.read_text()) if changed_only and seen_file and seen_file.exists() else {}
    clean: dict[str, list[int]] = {}
    hits: list[Hit] = []
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            stat = path.stat()
            identity = [stat.st_size, stat.st_mtime_ns]
            if seen.get(str(path.resolve())) == identity:
                clean[str(path.resolve())] = identity
                continue
            texts, kinds = _texts_of(path, needles)
            kinds |= scan_texts(texts, needles.values)
            hits.extend(Hit(path, kind) for kind in sorted(kinds))
            if not kinds:
                clean[str(path.resolve())] = identity
    if seen_file is not None:
        seen_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_path(seen_file) as tmp:
            tmp.write_text(json.dumps(clean, sort_keys=True))
    return hits
