"""Writing the inbox: each month's ten source tables as CSV, and the latent truth beside it.

Clean mode writes canonical UTF-8 CSV. Messy mode writes the same data the way vendor systems
do (CP932 or UTF-8 with BOM, Japanese header aliases, 和暦, full-width digits, Japanese codes);
every format choice comes from its own RNG so the data stream is identical in both modes.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import names

# =============================================================================================
# The contract's sources: columns in contract order, their kind, and their Japanese aliases.
# (Kept here rather than imported from contract.sources so the generator stands alone.)
# =============================================================================================
ID, STR, DATE, MONTH, INT, SEX = "id", "str", "date", "month", "int", "sex"
SOURCES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "residents": [
        ("resident_id", ID, ("宛名番号",)), ("household_id", ID, ("世帯番号",)),
        ("name", STR, ("氏名",)), ("name_kana", STR, ("氏名カナ", "カナ氏名")),
        ("birth_date", DATE, ("生年月日",)), ("sex", SEX, ("性別",)), ("address", STR, ("住所",)),
        ("district", STR, ("地区", "地区コード")), ("relationship", STR, ("続柄",)),
        ("moved_in_date", DATE, ("住定日", "転入日")), ("phone", STR, ("電話番号",))],
    "checkups": [
        ("resident_id", ID, ("宛名番号",)), ("exam_date", DATE, ("受診日",)),
        ("program", STR, ("健診種別",))],
    "care_premiums": [
        ("resident_id", ID, ("宛名番号",)), ("billing_month", MONTH, ("賦課月", "調定月")),
        ("amount_due", INT, ("調定額",)), ("amount_paid", INT, ("収納額",)),
        ("paid_date", DATE, ("収納日",)), ("collection", "collection", ("徴収方法",))],
    "nhi_premiums": [
        ("household_id", ID, ("世帯番号",)), ("billing_month", MONTH, ("賦課月", "調定月")),
        ("amount_due", INT, ("調定額",)), ("amount_paid", INT, ("収納額",))],
    "care_certifications": [
        ("resident_id", ID, ("宛名番号",)), ("care_level", "care_level", ("要介護度",)),
        ("valid_from", DATE, ("有効開始日",)), ("valid_to", DATE, ("有効終了日",))],
    "garbage_pickups": [
        ("resident_id", ID, ("宛名番号",)), ("pickup_date", DATE, ("収集日",)),
        ("result", "result", ("収集結果",))],
    "welfare_contacts": [
        ("resident_id", ID, ("宛名番号",)), ("contact_date", DATE, ("対応日",)),
        ("channel", "channel", ("対応方法",)), ("staff_type", "staff_type", ("対応者",))],
    "outreach_outcomes": [
        ("resident_id", ID, ("宛名番号",)), ("visit_date", DATE, ("訪問日",)),
        ("outcome", "outcome", ("訪問結果",))],
    "adverse_events": [
        ("resident_id", ID, ("宛名番号",)), ("event_date", DATE, ("発生日",)),
        ("event_type", "event_type", ("事案種別",))],
    "exclusions": [
        ("resident_id", ID, ("宛名番号",)), ("reason", "reason", ("理由",)),
        ("valid_from", DATE, ("開始日",)), ("valid_to", DATE, ("終了日",))],
}


def write_truth(truth: Path, state: pd.DataFrame) -> None:
    """The latent state of the last month, for demos and benchmarks (never part of the inbox)."""
    Path(truth).parent.mkdir(parents=True, exist_ok=True)
    state.to_csv(truth, index=False, encoding="utf-8", lineterminator="\n")


# =============================================================================================
# The extracts: clean (canonical) or messy (vendor-style) CSV
# =============================================================================================
DATE_STYLES = ("iso", "slash_padded", "slash", "compact", "wareki_kanji", "wareki_dot", "wareki_slash")
MONTH_STYLES = ("iso", "slash", "compact", "wareki_kanji", "wareki_dot")
_ERAS = [(dt.date.fromisoformat(start), letter, kanji) for letter, kanji, start in names.ERAS]
_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
_FULLWIDTH_ASCII = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


class InboxWriter:
    """Renders typed month tables to CSV files; the clean form is canonical, the messy one varies."""

    def __init__(self, inbox: Path, messy: bool, fmt_rng: np.random.Generator) -> None:
        self.inbox, self.messy, self.rng = inbox, messy, fmt_rng
        self._formatted: dict[tuple, dict] = {}   # (kind, style) -> {value: text}, reused monthly

    def write(self, month: str, source: str, table: dict[str, np.ndarray]) -> Path:
        folder = self.inbox / month
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{source}.csv"
        spec = SOURCES[source]
        style = self._messy_style(spec) if self.messy else None
        order = style["order"] if style else range(len(spec))
        headers = [style["headers"][k] if style else spec[k][0] for k in order]
        columns = [self._render(table[spec[k][0]], spec[k][1], style) for k in order]
        quote_all = bool(style and style["quote_all"])
        lines = [",".join(_csv_field(h, quote_all) for h in headers)]
        lines += map(",".join, zip(*(_csv_column(c, quote_all) for c in columns), strict=True))
        newline = style["newline"] if style else "\n"
        text = newline.join(lines) + newline
        path.write_bytes(text.encode(style["encoding"] if style else "utf-8"))  # utf-8-sig: BOM
        return path

    def _render(self, values: np.ndarray, kind: str, style: dict | None) -> np.ndarray:
        """Typed column -> strings, canonically (style None) or in a vendor style."""
        if kind == STR:
            return values
        if kind == ID:
            return _fullwidth(values) if style and style["fullwidth_ids"] else values
        if kind == DATE:
            form = style["date"] if style else "iso"
            return self._via_uniques(values.astype(np.int64), (DATE, form),
                                     lambda d: _format_date(np.int64(d).astype("datetime64[D]"), form))
        if kind == MONTH:
            form = style["month"] if style else "iso"
            return self._via_uniques(values, (MONTH, form), lambda m: _format_month(int(m), form))
        if kind == INT:
            form = (bool(style and style["fullwidth_amounts"]), bool(style and style["commas"]))
            return self._via_uniques(values, (INT, form), lambda v: _format_amount(int(v), *form))
        if kind == SEX:
            mapping = style["sex"] if style else names.SEX_STYLES[0]
            return self._via_uniques(values, (SEX, tuple(mapping.values())), lambda v: mapping[int(v)])
        if style and style["japanese_enums"]:
            return self._via_uniques(values, (kind, "ja"), names.ENUM_JA[kind].__getitem__)
        return values

    def _via_uniques(self, values: np.ndarray, key: tuple, fmt) -> np.ndarray:
        """Format each distinct value once, and remember it for the next months."""
        if len(values) == 0:
            return np.asarray(values, dtype=object)
        cache = self._formatted.setdefault(key, {})
        uniq, inverse = np.unique(values, return_inverse=True)
        texts = []
        for value in uniq.tolist():
            text = cache.get(value)
            if text is None:
                text = cache[value] = fmt(value)
            texts.append(text)
        return np.asarray(texts, dtype=object)[inverse.reshape(-1)]

    def _messy_style(self, spec) -> dict:
        """One vendor system's habits for one file, drawn from the format RNG only."""
        rng = self.rng
        cp932 = rng.random() < 0.6
        fullwidth_amounts = rng.random() < 0.2
        return {
            "encoding": "cp932" if cp932 else "utf-8-sig",
            "newline": "\r\n" if rng.random() < (0.8 if cp932 else 0.3) else "\n",
            "quote_all": rng.random() < 0.25,
            "date": DATE_STYLES[rng.integers(len(DATE_STYLES))],
            "month": MONTH_STYLES[rng.integers(len(MONTH_STYLES))],
            "fullwidth_ids": rng.random() < 0.25,
            "fullwidth_amounts": fullwidth_amounts,
            "commas": (not fullwidth_amounts) and rng.random() < 0.5,
            "japanese_enums": rng.random() < 0.7,
            "sex": names.SEX_STYLES[rng.integers(len(names.SEX_STYLES))],
            "order": rng.permutation(len(spec)),
            "headers": [_messy_header(column, aliases, rng) for column, _, aliases in spec],
        }


def _messy_header(column: str, aliases: tuple[str, ...], rng: np.random.Generator) -> str:
    if rng.random() < 0.8:
        header = aliases[rng.integers(len(aliases))]
    else:
        header = column.translate(_FULLWIDTH_ASCII) if rng.random() < 0.5 else column
    if rng.random() < 0.25:
        pad = ("\u0020", "\u0020\u0020", "\u3000")
        header = pad[rng.integers(3)] + header + pad[rng.integers(3)]
    return header


def _csv_field(text: str, quote: bool) -> str:
    """RFC 4180 quoting of one field (the header)."""
    if quote or any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_column(values: np.ndarray, quote_all: bool) -> list[str]:
    """RFC 4180 quoting for a whole column: quoted when asked to or when any field needs it
    (amounts written with thousands separators); joining lists is much faster than csv.writer."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    joined = "".join(values)
    if not quote_all and not any(ch in joined for ch in ',"\r\n'):
        return values
    if '"' in joined:
        values = [v.replace('"', '""') for v in values]
    return ['"' + v + '"' for v in values]


def _fullwidth(values: np.ndarray) -> np.ndarray:
    return pd.Series(values, dtype=object).str.translate(_FULLWIDTH_DIGITS).to_numpy(dtype=object)


def _format_amount(value: int, fullwidth: bool, commas: bool) -> str:
    if fullwidth:
        return str(value).translate(_FULLWIDTH_DIGITS)
    return f"{value:,}" if commas else str(value)


def _era(day: dt.date) -> tuple[str, str, int]:
    """(letter, kanji, era year) of a date; the first year of an era is year 1."""
    for start, letter, kanji in reversed(_ERAS):
        if day >= start:
            return letter, kanji, day.year - start.year + 1
    raise ValueError(f"date before 明治: {day}")


def _format_date(value: np.datetime64, style: str) -> str:
    if np.isnat(value):
        return ""
    day = value.astype(dt.date)
    if style == "iso":
        return day.isoformat()
    if style == "slash_padded":
        return f"{day.year}/{day.month:02d}/{day.day:02d}"
    if style == "slash":
        return f"{day.year}/{day.month}/{day.day}"
    if style == "compact":
        return f"{day.year}{day.month:02d}{day.day:02d}"
    letter, kanji, year = _era(day)
    if style == "wareki_kanji":
        return f"{kanji}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    if style == "wareki_dot":
        return f"{letter}{year}.{day.month}.{day.day}"
    return f"{letter}{year:02d}/{day.month:02d}/{day.day:02d}"  # wareki_slash


def _format_month(mi: int, style: str) -> str:
    year, month = mi // 12, mi % 12 + 1
    if style == "iso":
        return f"{year:04d}-{month:02d}"
    if style == "slash":
        return f"{year:04d}/{month:02d}"
    if style == "compact":
        return f"{year:04d}{month:02d}"
    letter, kanji, era_year = _era(dt.date(year, month, 1))
    if style == "wareki_kanji":
        return f"{kanji}{'元' if era_year == 1 else era_year}年{month}月"
    return f"{letter}{era_year}.{month}"  # wareki_dot
