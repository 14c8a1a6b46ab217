"""Refusals of files and zones say, in Japanese with English, which file, what rule, where and
what to do (issue 14, finding 7); never a cell value."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from contract.messages import SEPARATOR
from contract.sources import SOURCES
from contract.storage import DataDamaged, read_json, read_parquet
from expectations.policy import summary_lines
from pipelines.pseudonymise import KeyProblem, load_key
from pipelines.reading import ContractError, delivery_file, read_source


def _both(message: str, *words: str) -> None:
    """Japanese words (any non-ASCII) in the Japanese half, the others in the English half."""
    assert SEPARATOR in message
    ja, en = message.split(SEPARATOR, 1)
    assert not en.isascii() or all(ord(ch) < 0x3000 for ch in en)      # no Japanese in the English half
    for w in words:
        assert w in (en if w.isascii() else ja), (w, message)


@pytest.mark.parametrize("name, data, kind", [
    ("checkups.csv.gz", b"not gzip at all", "gzip"),
    # cut short; mtime fixed so the case (and its test id) is the same in every xdist worker
    ("checkups.csv.gz", gzip.compress(b"resident_id,exam_date\n1,2024-10-01\n", mtime=0)[:-9], "gzip"),
    ("checkups.parquet", b"PAR1 not really", "Parquet"),
], ids=["not-gzip", "gzip-cut-short", "not-parquet"])
def test_an_unreadable_delivered_file_is_named_in_both_languages(tmp_path: Path, name, data, kind):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ContractError) as refused:
        read_source(path, SOURCES["checkups"])
    _both(str(refused.value), str(path), f"{kind} ファイルとして読めない", "提供し直して",
          str(path), f"not a readable {kind} file", "deliver the file again")


def test_a_source_delivered_twice_and_a_repeated_column_say_what_to_do(tmp_path: Path):
    (tmp_path / "checkups.csv").write_bytes(b"")
    (tmp_path / "checkups.csv.gz").write_bytes(b"")
    with pytest.raises(ContractError) as refused:
        delivery_file(tmp_path, "checkups")
    _both(str(refused.value), "checkups が複数のファイルで提供されています", "一つだけを残して",
          "checkups is delivered more than once", "keep one")
    path = tmp_path / "residents_twice.csv"
    path.write_text("resident_id,exam_date,宛名番号\n0000001,2024-10-01,0000001\n", encoding="utf-8")
    with pytest.raises(ContractError) as refused:
        read_source(path, SOURCES["checkups"])
    message = str(refused.value)
    _both(message, f"{path} 1行目（見出し）", "resident_id が二度あります", "提供し直して",
          f"{path} line 1 (header)", "column resident_id appears twice", "with the column once")
    assert "0000001" not in message


def test_damaged_files_and_a_missing_key_are_named_with_their_repair(tmp_path: Path):
    broken = tmp_path / "table.parquet"
    broken.write_bytes(b"PAR1 truncated")
    with pytest.raises(DataDamaged) as refused:
        read_parquet(broken)
    _both(str(refused.value), str(broken), "Parquet ファイルとして読めません", "もう一度実行",
          "is not a readable Parquet file", "rerun the command that wrote it")
    (tmp_path / "record.json").write_text('{"cut": ', encoding="utf-8")
    with pytest.raises(DataDamaged) as refused:
        read_json(tmp_path / "record.json")
    _both(str(refused.value), "JSON として読めません", "not valid JSON")
    with pytest.raises(KeyProblem) as refused:
        load_key(tmp_path / "key" / "hmac.key")
    _both(str(refused.value), "仮名化の鍵", "mimamori keygen", "no pseudonymisation key", "mimamori keygen")
    key = tmp_path / "hmac.key"
    key.write_text("00" * 32 + "\n")
    key.chmod(0o644)
    with pytest.raises(KeyProblem) as refused:
        load_key(key)
    _both(str(refused.value), "本人以外も読めます", "chmod 600", "readable by others", "mimamori rekey")


@pytest.mark.parametrize("source, line, rows", [("residents", 2, 19878), ("checkups", 917, 500)])
def test_summary_lines_give_the_cause_the_file_and_an_example_line_in_both_languages(source, line, rows):
    """Not "2840 of 19878 rows quarantined" alone: the cause, the file, an example line, what to do."""
    share = {"source": source, "expectation": "quarantine_share", "check": f"{source}.quarantine.share",
             "description": f"no more than 2.0% of the rows delivered are quarantined (contract and validation together: "
                            f"2840 of {rows})", "description_ja": f"隔離された行が提供された行の2.0%以下である（{rows}行中2840行）",
             "unexpected": 2840, "rows": rows}
    evidence = {source: {"file": f"/inbox/2026-10/{source}.csv",
                         "reasons": [("birth_date: not a date", "birth_date（生年月日）が日付として読めない", 2840, line)]}}
    lines = summary_lines({"critical_failures": [share], "quarantined": [], "warnings": []}, evidence)
    text = "\n".join(lines)
    assert f"/inbox/2026-10/{source}.csv" in lines[0]
    _both(lines[0], f"{rows:,d}行中2,840行", f"2,840 of {rows:,d} rows")
    _both(lines[1].strip(), "生年月日）が日付として読めない", f"（例：{line}行目）", "birth_date: not a date", f"(e.g. line {line})")
    assert "validation.quarantine_limit" in text and "再提供" in text and "deliver it again" in text
