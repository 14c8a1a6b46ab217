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


# --- files that cannot be read at all: the whole file is refused, so there is no example row ----

REDELIVER_FILE = ("提供元の部署に確認し、ファイルを提供し直してもらってください",
                  "ask the department that sent it to deliver the file again")


def unreadable_file(path: object, kind: str) -> str:
    """A delivered gzip or Parquet file that does not open (damaged, cut short, or another format)."""
    return bilingual(f"{path}：{kind} ファイルとして読めないため、ファイル全体を受け付けませんでした"
                     f"（壊れている、途中で切れている、または {kind} 以外の形式）。{REDELIVER_FILE[0]}",
                     f"{path}: not a readable {kind} file (damaged, cut short, or another format), so the whole "
                     f"file is refused: {REDELIVER_FILE[1]}")


def empty_file(path: object) -> str:
    return bilingual(f"{path}：空のファイルです（見出し行もありません）。{REDELIVER_FILE[0]}",
                     f"{path}: empty file (no header): {REDELIVER_FILE[1]}")


def unreadable_csv(path: object, line: int, long_field: bool) -> str:
    """A CSV line the reader cannot split into fields."""
    if long_field:
        return bilingual(f"{path} {line}行目：CSV の上限より長い項目がここから始まります（閉じていない引用符の可能性）。"
                         f"引用符を直して、{REDELIVER_FILE[0]}",
                         f"{path} line {line}: a field longer than the CSV limit starts here (probably a quote "
                         f"that never closes): fix the quote and {REDELIVER_FILE[1]}")
    return bilingual(f"{path} {line}行目：CSV として読めません。{REDELIVER_FILE[0]}",
                     f"{path} line {line}: not readable as CSV: {REDELIVER_FILE[1]}")


def untyped_column(path: object, label: str, type_name: str) -> str:
    """A Parquet column whose type cannot be turned into the text the contract reads."""
    return bilingual(f"{path}：列 {label} の型（{type_name}）は文字列として読めません。"
                     "日付・数値・文字列のいずれかの型で書き出し直してもらってください",
                     f"{path}: column {label} has a type ({type_name}) that cannot be read as text: ask for the "
                     "file again with that column as a date, number or string")


def delivered_twice(month_dir: object, source: str, names: str) -> str:
    """Two files in one month folder deliver the same source."""
    return bilingual(f"{month_dir}：{source} が複数のファイルで提供されています（{names}）。"
                     "どちらが正しい提供か提供元に確認し、一つだけを残してください",
                     f"{month_dir}: {source} is delivered more than once ({names}); ask the department which "
                     "one is the delivery and keep one")


def repeated_column(path: object, line: int, column: str, first: str, second: str) -> str:
    """Two header names of one file mean the same contract column (header names, never values)."""
    return bilingual(f"{path} {line}行目（見出し）：列 {column} が二度あります（{first!r} と {second!r}）。"
                     "同じ列は一つにして、提供し直してもらってください",
                     f"{path} line {line} (header): column {column} appears twice ({first!r} and {second!r}); "
                     "ask for the file again with the column once")


# --- damaged files of our own zones: the file is named with the command that rebuilds it ------

def reingest(month: str) -> tuple[str, str]:
    """What rebuilds a lake month: (Japanese, English)."""
    return (f"`mimamori ingest --month {month} --force` で取り込み直してください",
            f"re-ingest with `mimamori ingest --month {month} --force`")


def damaged(path: object, what: tuple[str, str], how: tuple[str, str], repair: tuple[str, str]) -> str:
    """A file mimamori wrote that no longer is what it wrote: what it is, how it is damaged, what
    rebuilds it; each part given as (Japanese, English)."""
    return bilingual(f"{what[0]} {path} は{how[0]}。{repair[0]}", f"{what[1]} {path} {how[1]}: {repair[1]}")


RERUN = ("書き出したコマンドをもう一度実行してください", "rerun the command that wrote it")
NOT_PARQUET = ("Parquet ファイルとして読めません（途中で切れているか壊れています）", "is not a readable Parquet file (truncated or damaged)")
NOT_JSON = ("JSON として読めません（途中で切れているか書き換えられています）", "is not valid JSON (truncated or altered)")


# --- the pseudonymisation key -------------------------------------------------------------

def wrong_key(key_file: object, current: str, described_ja: str, described_en: str) -> str:
    """A key whose id is not the one the lake's delivery records name."""
    return bilingual(f"鍵 {key_file}（鍵ID {current}）はレイクを作った鍵ではありません（{described_ja}）。"
                     "保管区域のバックアップから正しい鍵を戻してください。鍵を意図して替えるには `mimamori rekey` を使います",
                     f"the key {key_file} (key id {current}) is not the key the lake was made with ({described_en}): "
                     "restore the right key from the custody backup; `mimamori rekey` is the only way to change keys deliberately")


def no_key(path: object) -> str:
    return bilingual(f"仮名化の鍵 {path} がありません。新しい区のときは `mimamori keygen` を実行してください。"
                     "この区のレイクが既にあるときは、保管区域のバックアップから鍵を戻してください（新しい鍵では別の仮名の集団ができます）",
                     f"no pseudonymisation key at {path}: for a new ward run `mimamori keygen`; if this ward's lake "
                     "already exists, restore its key from the custody backup instead (a new key would start a "
                     "second population of pseudonyms)")


def exposed_secret(what: tuple[str, str], path: object, mode: int, exposed: tuple[str, str] | None) -> str:
    """A custody secret readable by group or others."""
    tail_ja = f"。{exposed[0]}" if exposed else ""
    tail_en = f": {exposed[1]}" if exposed else ""
    return bilingual(f"{what[0]} {path} のモードが {mode:04o} で、本人以外も読めます。`chmod 600 {path}` を実行し、"
                     f"漏れたものとして扱ってください{tail_ja}",
                     f"the {what[1]} {path} has mode {mode:04o}, readable by others: `chmod 600 {path}` "
                     f"(and treat it as exposed{tail_en})")


def not_a_secret(what: tuple[str, str], path: object) -> str:
    return bilingual(f"{what[0]} {path} は256ビットの鍵ではありません。保管区域のバックアップから戻してください",
                     f"the {what[1]} at {path} is not a 256-bit key: restore it from the custody backup")
