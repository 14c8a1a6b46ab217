"""Every physical line of a delivery is accounted for, a swallowing quote refuses the file, and
quarantined rows keep their delivered values in custody, never in the analyst zone (issue 12)."""
from __future__ import annotations

import csv
import io
import re
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from pipelines.catalog import lake
from pipelines.cli import main
from pipelines.config import load_config
from contract.sources import SOURCES
from pipelines.ingest import read_delivery
from pipelines.leakscan import scan
from pipelines.pseudonymise import create_key, load_key, pseudonym
from pipelines.reading import ContractError, read_source
from synth.ward import generate_ward

MONTH, PREVIOUS = "2026-10", "2026-09"
CODECS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "cp932": "cp932"}


# ------------------------------------------------------------- the broken delivery


@pytest.fixture(scope="module")
def wards(tmp_path_factory) -> dict[str, Path]:
    """One month of a 4,000-resident ward, clean and messy: welfare_contacts.csv has 101 lines."""
    root = tmp_path_factory.mktemp("wards")
    for kind in ("clean", "messy"):
        generate_ward(root / kind, residents=4000, months=1, end_month=MONTH, seed=3, messy=kind == "messy")
    return {kind: root / kind / MONTH for kind in ("clean", "messy")}


def _split_lines(text: str) -> list[str]:
    return [line for line in re.split(r"(?<=\n)", text) if line]


def _damage_line(path: Path, number: int, unquote_all: bool) -> None:
    """Open a quote on line `number` that the file never closes, keeping encoding and headers.

    `unquote_all` first writes the file again without quotes (same encoding, same Japanese
    headers), so the quote swallows every later line, as in the issue. Otherwise the file keeps
    its own quoting: in a file that quotes every field, dropping the closing quote of line 90's
    last field merges it with line 91 instead.
    """
    encoding = read_source(path, SOURCES["welfare_contacts"], MONTH).encoding
    text = path.read_bytes().decode(CODECS[encoding])
    if unquote_all:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        text = "".join(",".join(row) + "\r\n" for row in rows)
    lines = _split_lines(text)
    body = lines[number - 1].rstrip("\r\n")
    ending = lines[number - 1][len(body):]
    fields = body.split(",")
    if fields[-1].startswith('"') and fields[-1].endswith('"'):
        fields[-1] = fields[-1][:-1]       # the closing quote is lost
    else:
        fields[-1] = '"' + fields[-1]      # a quote opens and nothing closes it
    lines[number - 1] = ",".join(fields) + ending
    path.write_bytes("".join(lines).encode(CODECS[encoding]))


@pytest.mark.parametrize("kind", ["clean", "messy"])
@pytest.mark.parametrize("unquote_all", [True, False], ids=["never-closes", "own-quoting"])
def test_a_quote_opened_on_line_90_refuses_the_file_naming_line_90(wards, tmp_path, kind, unquote_all):
    shutil.copytree(wards[kind], tmp_path / MONTH)
    path = tmp_path / MONTH / "welfare_contacts.csv"
    before = read_source(path, SOURCES["welfare_contacts"], MONTH)
    assert before.lines["physical"] >= 100 and before.lines["accepted"] == len(before.rows) == 100
    if kind == "messy":
        assert before.encoding == "cp932" and "resident_id" not in path.read_bytes().decode("cp932")
    _damage_line(path, 90, unquote_all)
    with pytest.raises(ContractError) as refused:
        read_source(path, SOURCES["welfare_contacts"], MONTH)
    message = str(refused.value)
    assert "welfare_contacts.csv line 90:" in message and "quote" in message
    if unquote_all:
        assert "never closes" in message


def test_the_broken_delivery_stops_the_month_before_anything_is_written(wards, tmp_path):
    cfg = load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})
    shutil.copytree(wards["messy"], cfg.inbox / MONTH)
    _damage_line(cfg.inbox / MONTH / "welfare_contacts.csv", 90, unquote_all=True)
    with pytest.raises(ContractError, match="line 90"):
        read_delivery(cfg, MONTH, b"k" * 32)     # ingest_month reads the whole month first
    assert not cfg.work.exists()


# ---------------------------------------------- a real ingest: the record and the custody zone


def _lines(path: Path) -> list[str]:
    return _split_lines(path.read_text(encoding="utf-8"))


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A 600-resident ward whose October delivery has shifted residents rows, blank lines, a
    multi-line memo, a malformed row and a validation fault; both months ingested via the CLI."""
    root = tmp_path_factory.mktemp("ingested")
    cfg = load_config(None, root / "inbox", root / "work", root / "custody", environ={})
    create_key(cfg.key_file)
    generate_ward(cfg.inbox, residents=600, months=2, end_month=MONTH, seed=7)
    october = cfg.inbox / MONTH
    planted: dict = {}

    # residents: two people of September's snapshot get shifted rows in October
    september = pd.read_csv(cfg.inbox / PREVIOUS / "residents.csv", dtype=str, keep_default_na=False)
    path = october / "residents.csv"
    lines = _lines(path)
    header = lines[0].rstrip("\n").split(",")
    known = set(september["resident_id"])
    candidates = [i for i, line in enumerate(lines[1:], start=1) if line.split(",", 1)[0] in known][:2]
    shifted = []
    for n, i in enumerate(candidates):
        fields = lines[i].rstrip("\n").split(",")
        row = dict(zip(header, fields))
        shifted.append({"line": i + 1, "resident_id": row["resident_id"], "name": row["name"],
                        "address": row["address"], "phone": row["phone"]})
        at = header.index("name")
        moved = fields[:at] + [""] + fields[at:]          # an extra comma before the name ...
        if n == 0:
            moved = moved[:-1]                            # ... and the last field lost: every value moves right
        lines[i] = ",".join(moved) + "\n"
    _write(path, lines)
    planted["shifted"] = shifted

    # welfare contacts: blank lines, a whitespace line, a memo over two lines, a malformed row
    path = october / "welfare_contacts.csv"
    lines = _lines(path)
    lines = [lines[0].rstrip("\n") + ",memo\n"] + [line.rstrip("\n") + ",\n" for line in lines[1:]]
    lines[1] = lines[1][:-2] + ',"訪問時\n不在、再訪予定"\n'
    lines.insert(3, "\n")
    lines.insert(5, "   \n")
    lines.insert(7, lines[6].rstrip("\n") + ",extra\n")
    lines.append("\n")
    _write(path, lines)
    planted["welfare_physical"] = "".join(lines).count("\n")

    # care premiums: one bill paid three times over fails a quarantine expectation
    path = october / "care_premiums.csv"
    bills = pd.read_csv(path, dtype=str, keep_default_na=False)
    bills.loc[3, "amount_paid"] = str(int(bills.loc[3, "amount_due"]) * 3 + 1000)
    bills.to_csv(path, index=False)
    planted["bills"] = len(bills)

    outputs = {}
    for month in (PREVIOUS, MONTH):
        buffer = io.StringIO()
        from contextlib import redirect_stdout
        with redirect_stdout(buffer):
            code = main(["--inbox", str(cfg.inbox), "--work", str(cfg.work), "--custody", str(cfg.custody),
                         "ingest", "--month", month])
        assert code == 0, buffer.getvalue()
        outputs[month] = buffer.getvalue()
    return cfg, load_key(cfg.key_file), planted, outputs


def test_every_physical_line_is_in_the_delivery_record_and_the_ingest_output(ingested):
    cfg, _, planted, outputs = ingested
    record = lake.delivery_record(cfg.lake, MONTH)
    for name, info in record["sources"].items():
        lines = info["lines"]
        assert lines["unit"] == "lines" and lines["refused"] == 0
        assert lines["physical"] == sum(lines[k] for k in ("header", "blank", "accepted", "quarantined", "refused"))
        physical = (cfg.inbox / MONTH / info["file"]).read_bytes().count(b"\n")
        assert lines["physical"] == physical, name
    welfare = record["sources"]["welfare_contacts"]
    assert welfare["quarantine_reasons"] == {"malformed row: 6 fields, expected 5": 1}
    assert welfare["lines"] == {
        "unit": "lines", "physical": planted["welfare_physical"], "header": 1, "blank": 3,
        "accepted": planted["welfare_physical"] - 5, "quarantined": 1, "refused": 0, "multiline_records": 1}
    assert welfare["accepted"] == welfare["lines"]["accepted"] - 1     # the memo row spans two lines
    assert welfare["unknown_columns"] == ["memo"]
    bills = record["sources"]["care_premiums"]["lines"]
    assert (bills["accepted"], bills["quarantined"]) == (planted["bills"] - 1, 1)   # moved by validation
    residents = record["sources"]["residents"]["lines"]
    assert residents["quarantined"] == 2
    printed = f"{planted['welfare_physical']} lines = 1 header + 3 blank + {planted['welfare_physical'] - 5} accepted + 1 quarantined"
    assert printed in outputs[MONTH]


def test_a_shifted_residents_row_leaves_no_identifier_in_the_analyst_zone(ingested):
    cfg, key, planted, _ = ingested
    shifted = planted["shifted"]
    assert all(person["name"] and person["address"] for person in shifted)
    bad = pd.read_parquet(cfg.work / "quarantine" / MONTH / "residents.parquet")
    assert list(bad.columns) == ["pid", "hid", "_line", "reason", "expectation", "columns"]
    assert bad["_line"].tolist() == [s["line"] for s in shifted]
    # the ID column was not touched by the shift, so its pseudonym is kept (the same as the lake's);
    # a malformed row's fields map to no column, so not even its ID is trusted
    assert bad["pid"].iloc[0] == pseudonym(key, "resident", shifted[0]["resident_id"])
    assert pd.isna(bad["pid"].iloc[1]) and pd.isna(bad["hid"].iloc[1])
    assert bad["columns"].tolist()[1] == "*"                       # malformed: 12 fields, 11 expected
    for path in cfg.work.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for person in shifted:
                for value in filter(None, (person["name"], person["address"], person["phone"])):
                    assert value.encode() not in data, (path, "an identifier of a shifted row")
    assert scan(cfg.inbox, [cfg.work], cfg.leakscan_cache) == []

    held = cfg.custody_quarantine / MONTH / "residents.parquet"
    raw = pd.read_parquet(held)
    assert raw["_line"].tolist() == [s["line"] for s in shifted]
    for person, text in zip(shifted, raw["text"]):
        assert person["name"] in text and person["address"] in text
    assert raw.loc[0, "district"] == shifted[0]["address"]          # where the shift put it
    assert stat.S_IMODE(held.stat().st_mode) == 0o600
    for folder in (cfg.custody_quarantine, cfg.custody_quarantine / MONTH):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_rows_moved_by_validation_keep_pseudonyms_only_and_their_raw_line_in_custody(ingested):
    cfg, _, _, _ = ingested
    bad = pd.read_parquet(cfg.work / "quarantine" / MONTH / "care_premiums.parquet")
    assert list(bad.columns) == ["pid", "_line", "reason", "expectation", "columns"]
    assert bad["_line"].tolist() == [3 + 2]
    assert bad["expectation"].tolist() == ["care_premiums.amount_paid.within_due"]
    assert bad["columns"].tolist() == ["amount_paid"]
    raw = pd.read_parquet(cfg.custody_quarantine / MONTH / "care_premiums.parquet")
    bills = pd.read_csv(cfg.inbox / MONTH / "care_premiums.csv", dtype=str, keep_default_na=False)
    assert raw["text"].tolist() == [",".join(bills.iloc[3])]
    assert not (cfg.custody_quarantine / PREVIOUS / "care_premiums.parquet").exists()


@pytest.mark.parametrize("data", [b'h\n1,a\n2,"b\nc"\n3\n', b'h\r\n1,a\r\n2,"b\r\nc"\r\n3', b'h\r1,a\r2,"b\rc"\r3\r'])
def test_the_custodian_gets_each_record_as_delivered_whatever_the_line_ends(tmp_path, data):
    from pipelines.reading import record_texts

    (tmp_path / "x.csv").write_bytes(data)
    assert record_texts(tmp_path / "x.csv", [2, 3, 5, 6], [1, 2, 1, 1]) == ["1,a", '2,"b\nc"', "3", None]


def _welfare(tmp_path: Path, data: bytes):
    path = tmp_path / "welfare_contacts.csv"
    path.write_bytes(data)
    return read_source(path, SOURCES["welfare_contacts"], MONTH)


_WELFARE = ["resident_id,contact_date,channel", "0011,2026-10-01,visit", "0012,2026-10-02,phone",
            "0013,2026-10-03,counter"]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_lf_crlf_and_cr_only_files_read_alike_line_for_line(tmp_path, ending):
    read = _welfare(tmp_path, ending.join(_WELFARE).encode())
    assert read.rows["_line"].tolist() == [2, 3, 4] and read.quarantine.empty
    assert read.lines == {"unit": "lines", "physical": 4, "header": 1, "blank": 0, "accepted": 3,
                          "quarantined": 0, "refused": 0, "multiline_records": 0}


def test_an_embedded_nul_costs_its_own_line_only(tmp_path):
    lines = list(_WELFARE)
    lines[2] = lines[2].replace("phone", "ph\x00one")
    read = _welfare(tmp_path, "\n".join(lines).encode())
    assert read.rows["_line"].tolist() == [2, 4]
    assert dict(zip(read.quarantine["_line"], read.quarantine["reason"])) == {3: "channel: unknown value"}
    assert (read.lines["accepted"], read.lines["quarantined"]) == (2, 1)


def test_a_quote_opened_mid_file_and_closed_later_refuses_naming_where_it_opens(tmp_path):
    lines = list(_WELFARE)
    lines[1] = lines[1].replace(",visit", ',"visit')
    lines[2] = lines[2].replace(",phone", ',phone"')
    with pytest.raises(ContractError, match=r"line 2: a quoted field opens here and runs to line 3"):
        _welfare(tmp_path, "\n".join(lines).encode())
