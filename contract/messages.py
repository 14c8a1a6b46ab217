"""The bilingual form of every refusal a welfare analyst meets: Japanese first, then " / " English.

An analyst reads the Japanese; an auditor or vendor who may not read it has the English on the
same line. A refusal names the file, the rule broken, an example line and what to do, and never a
cell value: these messages reach terminals and logs outside the custody zone.
"""
from __future__ import annotations

from contract.sources import SOURCES

SEPARATOR = " / "

# What the contract's row reasons ("<column>: <problem>") say in Japanese.
_PROBLEMS_JA = {
    "not a date": "日付として読めない",
    "not a month": "年月として読めない",
    "not digits": "数字でない",
    "not an integer": "整数でない",
    "not a boolean": "真偽値として読めない",
    "unknown value": "想定外の値",
    "missing": "空欄",
    "negative": "負の値",
}


def bilingual(ja: str, en: str) -> str:
    """One message in both languages, Japanese first."""
    return f"{ja}{SEPARATOR}{en}"


def column_label(source: str, column: str) -> str:
    """A contract column with its Japanese header, e.g. `birth_date（生年月日）`."""
    spec = SOURCES.get(source)
    for c in spec.columns if spec is not None else ():
        if c.name == column and c.aliases:
            return f"{column}（{c.aliases[0]}）"
    return column


def reason_ja(source: str, reason: str, validation_ja: dict[str, str] | None = None) -> str:
    """A quarantine reason in Japanese (the contract's and validation's reasons are English)."""
    if reason.startswith("validation: "):
        text = (validation_ja or {}).get(reason[len("validation: "):])
        return f"検証：{text}" if text else reason
    if reason.startswith("malformed row"):
        return "列の数が見出しと合わない行"
    if reason.startswith("duplicate key ("):
        return f"キーの重複（{reason[len('duplicate key ('):].rstrip(')')}）"
    column, sep, problem = reason.partition(": ")
    if not sep:
        return reason
    words = _PROBLEMS_JA.get(problem)
    if words is None and problem in ("after delivery month end", "in the future"):
        words = "提供月の末日より後の日付" if problem.startswith("after") else "未来の日付"
    return f"{column_label(source, column)}が{words}" if words else f"{column_label(source, column)}：{problem}"


def no_run(month: str, detail_ja: str = "", detail_en: str = "") -> str:
    """A command that needs a month's completed run, asked for a month without one."""
    return bilingual(f"{month} には完了した実行結果がありません{detail_ja}。先に `mimamori run --month {month}` を実行してください",
                     f"there is no completed run for {month}{detail_en}: run `mimamori run --month {month}` first")
