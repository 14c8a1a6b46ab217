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
