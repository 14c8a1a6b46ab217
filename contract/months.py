"""Delivery months ("YYYY-MM") and the dates they stand for."""
from __future__ import annotations

import re

import pandas as pd

_MONTH = re.compile(r"\A[0-9]{4}-(0[1-9]|1[0-2])\Z")   # \Z, not $ (a newline after it); [0-9], not \d (２０２６)


def check_month(month: str) -> str:
    if not _MONTH.match(month or ""):
        # A refusal in the form of contract/messages.py (not imported: months stays pandas-only).
        raise ValueError(f"{month!r} は年月ではありません。YYYY-MM の形（例：2026-04、月は 01〜12）で書いてください / "
                         f"not a month in YYYY-MM form: {month!r} (e.g. 2026-04, month 01 to 12)")
    return month


def month_end(month: str) -> pd.Timestamp:
    """The knowledge date of a delivery: the last day of its month."""
    return (pd.Period(check_month(month), freq="M").end_time.normalize()).as_unit("us")


def shift(month: str, n: int) -> str:
    return str(pd.Period(check_month(month), freq="M") + n)


def month_range(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(check_month(first), check_month(last), freq="M")]


def months_between(earlier: str, later: str) -> int:
    return (pd.Period(later, freq="M") - pd.Period(earlier, freq="M")).n


def age_on(birth: pd.Series, day: pd.Timestamp) -> pd.Series:
    """Whole years of age on `day` (a birthday on that day counts), Int64 with NA for no date."""
    before_birthday = (birth.dt.month > day.month) | ((birth.dt.month == day.month) & (birth.dt.day > day.day))
    return (day.year - birth.dt.year - before_birthday.astype(int)).astype("Int64")
