"""Leak guard: search places outside the custody zone for identifiers found in the inbox.

The needles are every 宛名番号, 世帯番号, name, kana name, address, phone and birth date in the
inbox's residents extracts. Parquet files are read column by column (their bytes are
compressed, so a byte search would see nothing); zip containers (xlsx, skops models) are
opened; every other file is searched as text. Hits name the file and the kind of identifier,
never the value.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.contract import SOURCES
from pipelines.reading import delivery_file, read_source

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


def inbox_identifiers(inbox: Path) -> dict[str, str]:
    """needle -> kind, from every month's residents extract."""
    needles: dict[str, str] = {}
    months = sorted(p for p in inbox.iterdir() if p.is_dir()) if inbox.is_dir() else []
    first_delivery = months[0].name + "-01" if months else "9999-12-31"
    for month_dir in months:
        path = delivery_file(month_dir, "residents")
        if path is None:
            continue
        rows = read_source(path, SOURCES["residents"]).rows
        for column, kind in [("resident_id", "宛名番号"), ("household_id", "世帯番号"), ("phone", "phone"),
                             ("name", "name"), ("name_kana", "kana name"), ("address", "address")]:
            values = rows[column].dropna().astype("str").str.replace(_SPACES, "", regex=True).unique()
            needles.update(dict.fromkeys(values, kind))
        births = rows["birth_date"].dropna().dt.strftime("%Y-%m-%d").unique()
        # A birth date inside the delivery period is indistinguishable from an event date.
        needles.update({b: "birth date" for b in births if b < first_delivery})
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
    """A date column leaks birth dates when most of its distinct days are inbox birth dates.

    Lake tables legitimately hold dates (validity periods, events), and some coincide with
    somebody's birthday; a copied birth-date column matches nearly everywhere.
    """
    days = set(pc.strftime(pc.unique(column), format="%Y-%m-%d").drop_null().to_pylist())
    return bool(days) and len(days & births) >= 0.5 * len(days)


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


def scan(inbox: Path, roots: list[Path]) -> list[Hit]:
    needles = Needles.of(inbox_identifiers(inbox))
    hits: list[Hit] = []
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            texts, kinds = _texts_of(path, needles)
            kinds |= scan_texts(texts, needles.values)
            hits.extend(Hit(path, kind) for kind in sorted(kinds))
    return hits
