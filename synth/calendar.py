"""Calendar arithmetic of the simulation: a month is an int (year * 12 + month - 1), a day a
numpy datetime64[D], and an age is computed from birth (year, month*100+day) for speed."""
from __future__ import annotations

import numpy as np
import pandas as pd

NAT = np.datetime64("NaT", "D")


def month_index(month: str) -> int:
    year, mon = month.split("-")
    if len(year) != 4 or not 1 <= int(mon) <= 12 or len(mon) != 2:
        raise ValueError(f"not a month in YYYY-MM form: {month!r}")
    return int(year) * 12 + int(mon) - 1


def month_label(mi: int) -> str:
    return f"{mi // 12:04d}-{mi % 12 + 1:02d}"


def month_start(mi: int) -> np.datetime64:
    return np.datetime64(month_label(mi) + "-01", "D")


def month_ends(mi: np.ndarray | int) -> np.ndarray:
    """Last day of each month index (vectorised)."""
    months = (np.asarray(mi, dtype=np.int64) - 1970 * 12 + 1).astype("datetime64[M]")
    return months.astype("datetime64[D]") - np.timedelta64(1, "D")


def months_of(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12


def weekday(dates: np.ndarray) -> np.ndarray:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (dates.astype(np.int64) + 3) % 7


def birth_parts(birth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(year, month*100+day) of each birth date, for fast age arithmetic."""
    months = birth.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    day = (birth - months.astype("datetime64[D]")).astype(np.int64) + 1
    mon = months.astype(np.int64) % 12 + 1
    return year.astype(np.int16), (mon * 100 + day).astype(np.int16)


def age_on(by: np.ndarray, bmd: np.ndarray, on: np.datetime64) -> np.ndarray:
    """Age in whole years on a date, from birth (year, month*100+day)."""
    day = pd.Timestamp(on)
    return (day.year - by.astype(np.int64)) - ((day.month * 100 + day.day) < bmd)
