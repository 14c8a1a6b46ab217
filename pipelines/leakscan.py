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


def _squash(text: str) -> str:
    return re.sub(r"[ \u3000]", "", text)


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
            for value in rows[column].dropna().unique():
                needles[_squash(str(value))] = kind
        births = rows["birth_date"].dropna().dt.strftime("%Y-%m-%d").unique()
        # A birth date inside the delivery period is indistinguishable from an event date.
        needles.update({b: "birth date" for b in births if b < first_delivery})
    return needles


def _date_column_leaks(column: pa.ChunkedArray, births: set[str]) -> bool:
    """A date column leaks birth dates when most of its distinct days are inbox birth dates.

    Lake tables legitimately hold dates (validity periods, events), and some coincide with
    somebody's birthday; a copied birth-date column matches nearly everywhere.
    """
    days = {str(v)[:10] for v in pc.unique(column).to_pylist() if v is not None}
    return bool(days) and len(days & births) >= 0.5 * len(days)


def _texts_of(path: Path, needles: dict[str, str]) -> tuple[list[str], set[str]]:
    """(texts to search, kinds already found) for one file."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        births = {k for k, v in needles.items() if v == "birth date"}
        texts: list[str] = []
        kinds: set[str] = set()
        for column in table.columns:
            while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                column = pc.list_flatten(column)
            if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
                if _date_column_leaks(column, births):
                    kinds.add("birth date")
                continue
            texts.extend(str(v) for v in pc.unique(column).to_pylist() if v is not None)
        return texts, kinds
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name).decode("utf-8", "ignore") for name in archive.namelist()], set()
    return [path.read_bytes().decode("utf-8", "ignore")], set()


def scan_text(text: str, needles: dict[str, str]) -> set[str]:
    kinds = set()
    if _squash(text) in needles:
        kinds.add(needles[_squash(text)])
    for pattern in _TOKENS:
        for token in pattern.findall(text):
            token = _squash(token)
            if token in needles:
                kinds.add(needles[token])
    return kinds


def scan(inbox: Path, roots: list[Path]) -> list[Hit]:
    needles = inbox_identifiers(inbox)
    hits: list[Hit] = []
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            texts, kinds = _texts_of(path, needles)
            for text in texts:
                kinds |= scan_text(text, needles)
            hits.extend(Hit(path, kind) for kind in sorted(kinds))
    return hits
