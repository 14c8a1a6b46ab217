"""The leak guard's birth-date rule: copied birth dates are found, ordinary dates are not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.leakscan import _date_column_leaks


def _column(days: list[str]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(pd.to_datetime(days).to_numpy(dtype="datetime64[us]"))])


def _dense_births(seed: int, share: float) -> list[str]:
    """Birth dates of a large ward: `share` of the days of 1930–2000 are somebody's birthday."""
    days = pd.date_range("1930-01-01", "2000-12-31").strftime("%Y-%m-%d")
    rng = np.random.default_rng(seed)
    return sorted(days[rng.random(len(days)) < share])


def test_a_copied_birth_date_column_is_found_even_when_birth_dates_cover_most_days():
    births = _dense_births(1, 0.86)
    copied = list(np.random.default_rng(2).choice(births, 3000))
    assert _date_column_leaks(_column(copied), frozenset(births))


def test_ordinary_dates_are_not_taken_for_birth_dates_in_a_large_ward():
    births = _dense_births(3, 0.86)
    # certification start dates: any day of the period, birthdays only by chance
    ordinary = list(pd.date_range("1990-01-01", "1999-12-31").strftime("%Y-%m-%d"))
    assert not _date_column_leaks(_column(ordinary), frozenset(births))


def test_where_birth_dates_cover_every_day_a_date_alone_is_not_flagged():
    births = list(pd.date_range("1930-01-01", "2000-12-31").strftime("%Y-%m-%d"))
    assert not _date_column_leaks(_column(births[:5000]), frozenset(births))
    # in a small ward the rule still finds them
    few = births[::40]
    assert _date_column_leaks(_column(few), frozenset(few))


def test_the_guard_searches_for_the_identifiers_of_a_quarantined_residents_row(tmp_path):
    """A row quarantined for a bad birth date is still a person: their name, address and phone
    must be needles, or a leak of exactly the rows that went wrong would pass unseen."""
    from contract.sources import SOURCES
    from pipelines.leakscan import _squash, needle_groups
    from pipelines.reading import read_source

    header = "resident_id,household_id,name,name_kana,birth_date,sex,address,district,relationship,moved_in_date,phone"
    good = "0010811509,5100085657,佐藤　聡子,サトウ　サトコ,1981-04-15,2,東京都みまもり区新田2丁目4番14号,新田地区,世帯主,2015-02-14,080-8603-9587"
    bad = "0010811511,5100085664,佐藤　信也,サトウ　シンヤ,1984-13-45,1,東京都みまもり区西原1丁目7番4号,西原地区,世帯主,2010-09-02,03-3923-4015"
    # the sex field left out: everything after it shifts left and the district lands under `address`
    shifted = "0010811512,5100085671,鈴木　一郎,スズキ　イチロウ,1950-01-02,東京都みまもり区新田1丁目1番1号,新田地区,世帯主,2001-01-01,03-1111-2222"
    path = tmp_path / "residents.csv"
    path.write_text("\n".join([header, good, bad, shifted]) + "\n", encoding="utf-8")
    read = read_source(path, SOURCES["residents"], delivery_month="2026-10")
    assert len(read.rows) == 1 and len(read.quarantine) == 2
    needles = {kind: set(values) for kind, values in needle_groups(read)[0]}
    for kind, value in [("name", "佐藤　信也"), ("address", "東京都みまもり区西原1丁目7番4号"), ("phone", "03-3923-4015"),
                        ("name", "佐藤　聡子")]:
        assert _squash(value) in needles[kind], kind
    # the malformed row's fields are needles whatever column they were meant for...
    for value in ["鈴木　一郎", "東京都みまもり区新田1丁目1番1号", "03-1111-2222"]:
        assert _squash(value) in needles["identifier of a malformed residents row"]
    # ...but not what names no one: a district, a relationship, a date
    assert not {"新田地区", "世帯主", "2001-01-01"} & {v for values in needles.values() for v in values}
